import type {
  $Command,
  S3Client,
  S3ClientResolvedConfig,
  ServiceInputTypes,
  ServiceOutputTypes,
} from '@aws-sdk/client-s3';
import type { ObjectStore } from '../object-store.js';
import type { S3Capabilities } from '../s3-capabilities.js';
import type { S3Tuning } from '../s3-config.js';
import { translate } from './errors.js';

type Fields = Pick<
  S3Context,
  'client' | 'bucket' | 'prefix' | 'endpoint' | 'tuning' | 'caps' | 'store'
>;

/**
 * What every operation of the S3 driver works with: one bucket under one key prefix, the client
 * that talks to it, and how keys and failures map between the store and S3. The functions in
 * `storage/s3/` take it as their first argument; `S3ObjectStore` owns it.
 */
export class S3Context {
  readonly client: S3Client;
  readonly bucket: string;
  readonly prefix: string;
  readonly endpoint: string;
  readonly tuning: S3Tuning;
  /**
   * The optional features in use. Shared with the store and changed in place: an operation that
   * finds a feature missing turns it off for every later call.
   */
  readonly caps: S3Capabilities;
  /** The store itself, for steps that reuse one of its public operations, checks included. */
  readonly store: ObjectStore;

  constructor(fields: Fields) {
    this.client = fields.client;
    this.bucket = fields.bucket;
    this.prefix = fields.prefix;
    this.endpoint = fields.endpoint;
    this.tuning = fields.tuning;
    this.caps = fields.caps;
    this.store = fields.store;
  }

  full(key: string): string {
    return this.prefix + key;
  }

  /** The store key of S3 key `fullKey`, which is left alone when outside the prefix. */
  relative(fullKey: string): string {
    return fullKey.startsWith(this.prefix) ? fullKey.slice(this.prefix.length) : fullKey;
  }

  /** The store key of a listed S3 key, or `undefined` when it lies outside the prefix. */
  strip(fullKey: string | undefined): string | undefined {
    if (fullKey === undefined || !fullKey.startsWith(this.prefix)) return undefined;
    return fullKey.slice(this.prefix.length);
  }

  copySource(key: string): string {
    const path = this.full(key).split('/').map(encodeURIComponent).join('/');
    return `${this.bucket}/${path}`;
  }

  /** Sends a command, translating failures into storage errors about `key`. */
  async send<I extends ServiceInputTypes, O extends ServiceOutputTypes>(
    command: $Command<I, O, S3ClientResolvedConfig, ServiceInputTypes, ServiceOutputTypes>,
    key: string,
    signal: AbortSignal | undefined,
  ): Promise<O> {
    signal?.throwIfAborted();
    try {
      return await this.client.send(command, { abortSignal: signal });
    } catch (err) {
      throw this.fail(err, key);
    }
  }

  fail(err: unknown, key: string): Error {
    return translate(err, key, this.bucket);
  }
}
