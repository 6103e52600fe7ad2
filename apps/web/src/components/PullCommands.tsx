import { CopyButton } from './CopyButton.js';

/** The host clients pull from: the one the dashboard is served at. */
export function registryHost(): string {
  return window.location.host;
}

/**
 * Ready-to-copy commands that fetch one reference. Snapshots and cloud images can also be
 * fetched over plain HTTP from `/dl/` (a tar for `cocoon snapshot import`, or the joined disk):
 * `curl -OJ` saves under the name the server gives (`<name>-<tag>.tar`, `<name>-<tag>.qcow2`),
 * where `-O` alone would save a file named after the URL's last segment, `<name>:<tag>`.
 */
export function pullCommands(name: string, tag: string, kind: string | undefined) {
  const ref = `${registryHost()}/${name}:${tag}`;
  const dl = `${window.location.origin}/dl/${name}:${tag}`;
  const base = name.split('/').pop() ?? name;
  const insecure = window.location.protocol === 'http:';
  const commands = [
    { tool: 'epoch', command: `epoch pull ${ref}` },
    {
      tool: 'skopeo',
      command: `skopeo copy${insecure ? ' --src-tls-verify=false' : ''} docker://${ref} oci:${base}:${tag}`,
    },
  ];
  if (kind === 'container-image' || kind === 'image-index') {
    commands.push(
      { tool: 'docker', command: `docker pull ${ref}` },
      { tool: 'podman', command: `podman pull${insecure ? ' --tls-verify=false' : ''} ${ref}` },
    );
  }
  if (kind === 'snapshot' || kind === 'chunked-snapshot') {
    commands.push(
      { tool: 'cocoon', command: `curl -fL ${dl} | cocoon snapshot import --name ${base}` },
      { tool: 'curl', command: `curl -fLOJ ${dl}` },
    );
  }
  if (kind === 'cloud-image') commands.push({ tool: 'curl', command: `curl -fLOJ ${dl}` });
  return commands;
}

export function PullCommands({
  name,
  tag,
  kind,
}: {
  name: string;
  tag: string;
  kind: string | undefined;
}) {
  return (
    <ul className="commands">
      {pullCommands(name, tag, kind).map((c) => (
        <li key={c.tool}>
          <span className="tool">{c.tool}</span>
          <code>{c.command}</code>
          <CopyButton text={c.command} label="Copy" />
        </li>
      ))}
    </ul>
  );
}
