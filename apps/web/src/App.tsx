import { type Access, accessOf } from './api/access.js';
import { useMe } from './api/queries.js';
import { Account } from './components/Account.js';
import { ErrorState, Loading } from './components/states.js';
import { About } from './pages/About.js';
import { Audit } from './pages/Audit.js';
import { Dashboard } from './pages/Dashboard.js';
import { Repositories } from './pages/Repositories.js';
import { RepositoryPage } from './pages/Repository.js';
import { SignIn } from './pages/SignIn.js';
import { TagPage } from './pages/TagDetail.js';
import { Tokens } from './pages/Tokens.js';
import { Link, parseRoute, type Route, useLocation } from './router.js';

const NAV = [
  { to: '/', label: 'Dashboard', page: 'dashboard' },
  { to: '/repositories', label: 'Repositories', page: 'repositories' },
  { to: '/tokens', label: 'Tokens', page: 'tokens', admin: true },
  { to: '/audit', label: 'Audit log', page: 'audit' },
  { to: '/about', label: 'About', page: 'about' },
];

/**
 * The dashboard: the header and the routed page for anyone `/auth/me` answers for (signed in,
 * or anonymous and read-only, or the local open mode's administrator); the sign-in page alone
 * when the server lets nobody in unsigned.
 */
export function App() {
  const me = useMe();
  const url = useLocation();
  const route = parseRoute(url.pathname);
  if (me.isPending) return <Loading what="Epoch" />;
  if (me.error) return <ErrorState error={me.error} what="your session" />;
  if (!me.data) return <SignIn />;
  const access = accessOf(me.data);
  const section = route.page === 'repository' || route.page === 'tag' ? 'repositories' : route.page;
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <Link href="/" className="brand">
          Epoch
        </Link>
        <nav aria-label="Main">
          {NAV.filter((n) => !n.admin || access.admin).map((n) => (
            <Link key={n.to} href={n.to} aria-current={section === n.page ? 'page' : undefined}>
              {n.label}
            </Link>
          ))}
        </nav>
        <Account me={me.data} />
      </header>
      <Page route={route} access={access} />
    </>
  );
}

function Page({ route, access }: { route: Route; access: Access }) {
  switch (route.page) {
    case 'dashboard':
      return <Dashboard />;
    case 'repositories':
      return <Repositories />;
    case 'repository':
      return <RepositoryPage key={route.name} name={route.name} />;
    case 'tag':
      return (
        <TagPage
          key={`${route.name}:${route.tag}`}
          name={route.name}
          tag={route.tag}
          canDelete={access.admin}
        />
      );
    case 'tokens':
      return <Tokens />;
    case 'audit':
      return <Audit />;
    case 'about':
      return <About />;
    case 'signin':
      return <SignIn />;
    default:
      return (
        <main id="main">
          <h1>Not found</h1>
          <p>
            There is no such page. <Link href="/">Back to the dashboard</Link>
          </p>
        </main>
      );
  }
}
