import { useMe, useVersion } from '../api/queries.js';
import { ErrorState, Loading } from '../components/states.js';

export function About() {
  const version = useVersion();
  const me = useMe();
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
                <dt>Signed in as</dt>
                <dd>
                  {me.data.user} ({me.data.api === 'admin' ? 'admin' : 'read-only'})
                </dd>
              </div>
            ) : null}
          </dl>
        )}
      </section>
    </main>
  );
}
