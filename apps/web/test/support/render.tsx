import { QueryClientProvider } from '@tanstack/react-query';
import { type RenderResult, render } from '@testing-library/react';
import { App } from '../../src/App.js';
import { createQueryClient } from '../../src/api/query-client.js';

declare global {
  // happy-dom's control object on the window.
  var happyDOM: { setURL(url: string): void };
}

/** Renders the whole app at `url` (the test API server's origin, so fetches go to it). */
export function renderApp(url: string): RenderResult {
  globalThis.happyDOM.setURL(url);
  return render(
    <QueryClientProvider client={createQueryClient()}>
      <App />
    </QueryClientProvider>,
  );
}
