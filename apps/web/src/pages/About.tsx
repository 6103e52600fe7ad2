import { accessOf } from '../api/access.js';
import { useMe, useVersion } from '../api/queries.js';
import { ErrorState, Loading } from '../components/states.js';

export function About() {
  const version = useVersion();
  const me = useMe();
  const access = accessOf(me.data);
  return (
    <main id="main">
      <h1>About</h1>
      <section className="card">
        {version.isPending ? (
          <Loading what="version" />
        ) : version.error ? (
          <ErrorState error={version.error} what="the version" />
        ) : (
          <dl className="facts-grid">
            <div>
              <dt>Version</dt>
              <dd>{version.data.version}</dd>
            </div>
            <div>
              <dt>Storage</dt>
              <dd>{version.data.storage === 's3' ? 'S3 object store' : 'Filesystem'}</dd>
            </div>
            <div>
              <dt>Index</dt>
              <dd>{version.data.index === 'mysql' ? 'MySQL' : 'SQLite'}</dd>
            </div>
            {me.data ? (
              <div>
                <dt>{access.signedIn ? 'Signed in as' : 'Not signed in'}</dt>
                <dd>
                  {access.signedIn
                    ? `${me.data.user} (${access.admin ? 'admin' : 'read-only'})`
                    : access.localOpen
                      ? 'open local access (admin until a token exists)'
                      : 'read-only'}
                </dd>
              </div>
            ) : null}
          </dl>
        )}
      </section>
    </main>
  );
}
