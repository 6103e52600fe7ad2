import { render, screen } from '@testing-library/react';
import { expect, it } from 'vitest';
import { App } from '../src/App.js';

it('renders the product name', () => {
  render(<App />);
  expect(screen.getByRole('heading', { name: 'Epoch' })).toBeTruthy();
});
