/** The dashboard shell. Pages arrive with the dashboard issue; until then it names the product. */
export function App() {
  return (
    <main>
      <h1>Epoch</h1>
      <p>A registry for MicroVM snapshots and cloud images.</p>
    </main>
  );
}
