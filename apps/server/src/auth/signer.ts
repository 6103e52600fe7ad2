import { createHmac, hkdfSync } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';

/**
 * What a signed token is for. Each kind has its own audience, so a refresh token can never be
 * replayed as an access token or a session cookie, and so on.
 */
export type TokenUse = 'access' | 'refresh' | 'session' | 'login';

const ISSUER = 'epoch';
const AUDIENCE: Record<TokenUse, string> = {
  access: 'epoch-registry',
  refresh: 'epoch-refresh',
  session: 'epoch-session',
  login: 'epoch-login',
};

/**
 * Signs and checks the server's own JWTs (HS256) with a master secret every server process
 * shares, so a token issued by one replica is accepted by the others. Each use signs with its
 * own key derived from the master (HKDF), on top of its own audience.
 */
export class Signer {
  readonly #keys: Record<TokenUse, Uint8Array>;
  readonly #fingerprintKey: Uint8Array;

  constructor(master: string) {
    if (master.length < 32) throw new Error('a signing secret needs at least 32 characters');
    const derive = (use: TokenUse) =>
      new Uint8Array(hkdfSync('sha256', master, 'epoch', `epoch ${use} token`, 32));
    this.#keys = {
      access: derive('access'),
      refresh: derive('refresh'),
      session: derive('session'),
      login: derive('login'),
    };
    this.#fingerprintKey = new Uint8Array(
      hkdfSync('sha256', master, 'epoch', 'epoch credential fingerprint', 32),
    );
  }

  /**
   * A short keyed hash of a secret, to bind a token to the secret it was issued for without
   * revealing it: without the master key it cannot be tested against guesses offline.
   */
  fingerprint(secret: string): string {
    return createHmac('sha256', this.#fingerprintKey)
      .update(secret, 'utf8')
      .digest()
      .subarray(0, 16)
      .toString('base64url');
  }

  /** A compact JWT of `claims` valid for `ttlSeconds`. */
  sign(use: TokenUse, subject: string, claims: Record<string, unknown>, ttlSeconds: number) {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE[use])
      .setSubject(subject)
      .setIssuedAt(now)
      .setNotBefore(now - 5)
      .setExpirationTime(now + ttlSeconds)
      .setJti(crypto.randomUUID())
      .sign(this.#keys[use]);
  }

  /** The claims of a valid, unexpired token of this use; `undefined` for anything else. */
  async verify(use: TokenUse, jwt: string): Promise<Record<string, unknown> | undefined> {
    try {
      const { payload } = await jwtVerify(jwt, this.#keys[use], {
        issuer: ISSUER,
        audience: AUDIENCE[use],
        algorithms: ['HS256'],
      });
      return payload;
    } catch {
      return undefined;
    }
  }
}
