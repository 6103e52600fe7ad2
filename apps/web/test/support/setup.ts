import { configure } from '@testing-library/react';

// The tests talk to a real HTTP server. On a loaded machine (CI runs every package's suite at
// once) a page can take longer than testing-library's default 1 s to show what a `waitFor` or
// `findBy` waits for: a 1 s wait failed there once while the page was right.
configure({ asyncUtilTimeout: 5000 });
