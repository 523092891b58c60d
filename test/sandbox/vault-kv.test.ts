import vault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVaultStandIn, type VaultStandIn } from '../../sandbox/vault/stand-in.ts';

let standIn: VaultStandIn;
let root: vault.client;

beforeAll(async () => {
  standIn = await startVaultStandIn({ rootToken: 'root-kv' });
  root = vault({ endpoint: standIn.addr, token: 'root-kv' });
});
afterAll(() => standIn.close());

async function failure(call: Promise<unknown>): Promise<{ status: number; body: unknown; message: string }> {
  const error = (await call.then(
    () => expect.fail('expected the call to fail'),
    (reason: unknown) => reason,
  )) as { message: string; response: { statusCode: number; body: unknown } };
  return { status: error.response.statusCode, body: error.response.body, message: error.message };
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

describe('KV v2 data', () => {
  it('writes a nested secret and reads it back inside Vault’s envelope', async () => {
    const path = 'secret/data/deploy-keys/job-1/github/acme/models';
    const written = await root.write(path, { data: { private_key: 'k1', fingerprint: 'SHA256:x' } });
    expect(written.data).toEqual({
      created_time: expect.stringMatching(RFC3339),
      custom_metadata: null,
      deletion_time: '',
      destroyed: false,
      version: 1,
    });

    const read = await root.read(path);
    expect(read).toMatchObject({
      request_id: expect.any(String),
      lease_id: '',
      renewable: false,
      lease_duration: 0,
      wrap_info: null,
      warnings: null,
      auth: null,
    });
    expect(read.data.data).toEqual({ private_key: 'k1', fingerprint: 'SHA256:x' });
    expect(read.data.metadata).toMatchObject({ version: 1, destroyed: false, deletion_time: '' });
  });

  it('keeps every version, reads an older one with ?version=, and enforces check-and-set', async () => {
    await root.write('secret/data/versions', { data: { v: 'one' } });
    const second = await root.write('secret/data/versions', { data: { v: 'two' }, options: { cas: 1 } });
    expect(second.data.version).toBe(2);

    expect((await root.read('secret/data/versions')).data.data).toEqual({ v: 'two' });
    expect((await root.read('secret/data/versions?version=1')).data.data).toEqual({ v: 'one' });

    const stale = await failure(
      root.write('secret/data/versions', { data: { v: 'x' }, options: { cas: 1 } }),
    );
    expect(stale.status).toBe(400);
    expect(stale.body).toEqual({ errors: ['check-and-set parameter did not match the current version'] });
    const createOnly = await failure(root.write('secret/data/versions', { data: {}, options: { cas: 0 } }));
    expect(createOnly.status).toBe(400);
  });

  it('answers 404 with an empty errors list for a secret that does not exist', async () => {
    const missing = await failure(root.read('secret/data/nothing/here'));
    expect(missing).toMatchObject({ status: 404, body: { errors: [] } });
    const noData = await failure(root.write('secret/data/empty', { options: {} }));
    expect(noData).toMatchObject({ status: 400, body: { errors: ['no data provided'] } });
  });

  it('soft-deletes the latest version: a 404 that still carries the metadata; undelete restores it', async () => {
    await root.write('secret/data/soft', { data: { v: 1 } });
    await root.write('secret/data/soft', { data: { v: 2 } });
    await root.delete('secret/data/soft');

    const gone = await failure(root.read('secret/data/soft'));
    expect(gone.status).toBe(404);
    const body = gone.body as {
      data: { data: unknown; metadata: { deletion_time: string; version: number } };
    };
    expect(body.data.data).toBeNull();
    expect(body.data.metadata.version).toBe(2);
    expect(body.data.metadata.deletion_time).toMatch(RFC3339);
    expect((await root.read('secret/data/soft?version=1')).data.data).toEqual({ v: 1 });

    await root.write('secret/undelete/soft', { versions: [2] });
    expect((await root.read('secret/data/soft')).data.data).toEqual({ v: 2 });
  });

  it('destroys chosen versions for good', async () => {
    await root.write('secret/data/destroyed', { data: { v: 1 } });
    await root.write('secret/data/destroyed', { data: { v: 2 } });
    await root.write('secret/destroy/destroyed', { versions: [1] });

    const read = await failure(root.read('secret/data/destroyed?version=1'));
    expect(read.status).toBe(404);
    expect((read.body as { data: { metadata: { destroyed: boolean } } }).data.metadata.destroyed).toBe(true);
    await root.write('secret/undelete/destroyed', { versions: [1] });
    expect((await failure(root.read('secret/data/destroyed?version=1'))).status).toBe(404);

    const metadata = await root.read('secret/metadata/destroyed');
    expect(metadata.data.versions['1'].destroyed).toBe(true);
    expect(metadata.data.versions['2'].destroyed).toBe(false);
    const none = await failure(root.write('secret/destroy/destroyed', {}));
    expect(none).toMatchObject({ status: 400, body: { errors: ['no version number provided'] } });
  });
});

describe('KV v2 metadata', () => {
  it('stores custom_metadata and reports versions, current_version and max_versions', async () => {
    await root.write('secret/data/meta/key', { data: { a: 1 } });
    await root.write('secret/metadata/meta/key', {
      custom_metadata: { key_id: 'k-42', owner: 'deploykey-rotator' },
      max_versions: 5,
    });
    await root.write('secret/data/meta/key', { data: { a: 2 } });

    const metadata = await root.read('secret/metadata/meta/key');
    expect(metadata.data).toMatchObject({
      cas_required: false,
      current_version: 2,
      oldest_version: 0,
      max_versions: 5,
      delete_version_after: '0s',
      custom_metadata: { key_id: 'k-42', owner: 'deploykey-rotator' },
      created_time: expect.stringMatching(RFC3339),
      updated_time: expect.stringMatching(RFC3339),
    });
    expect(Object.keys(metadata.data.versions)).toEqual(['1', '2']);
    expect((await root.read('secret/data/meta/key')).data.metadata.custom_metadata).toEqual({
      key_id: 'k-42',
      owner: 'deploykey-rotator',
    });
  });

  it('drops the oldest versions beyond max_versions', async () => {
    await root.write('secret/metadata/capped', { max_versions: 2 });
    for (const v of [1, 2, 3]) await root.write('secret/data/capped', { data: { v } });
    expect((await failure(root.read('secret/data/capped?version=1'))).body).toEqual({ errors: [] });
    const metadata = await root.read('secret/metadata/capped');
    expect(Object.keys(metadata.data.versions)).toEqual(['2', '3']);
    expect(metadata.data.oldest_version).toBe(2);
  });

  it('rejects custom_metadata values Vault would refuse', async () => {
    const empty = await failure(root.write('secret/metadata/bad', { custom_metadata: { k: '' } }));
    expect(empty.status).toBe(400);
    expect(empty.message).toContain('custom_metadata validation failed: length of value for key "k" is 0');
  });

  it('lists keys with LIST and with GET ?list=true; folders end with "/"; empty is a 404', async () => {
    for (const path of ['list/a/one', 'list/a/two', 'list/b', 'list/c/deep/er']) {
      await root.write(`secret/data/${path}`, { data: { p: path } });
    }
    expect((await root.list('secret/metadata/list')).data.keys).toEqual(['a/', 'b', 'c/']);

    const getList = vault({ endpoint: standIn.addr, token: 'root-kv', noCustomHTTPVerbs: true });
    expect((await getList.list('secret/metadata/list/a/')).data.keys).toEqual(['one', 'two']);

    const empty = await failure(root.list('secret/metadata/list/none'));
    expect(empty).toMatchObject({ status: 404, body: { errors: [] } });
  });

  it('deletes metadata and every version with DELETE on the metadata path', async () => {
    await root.write('secret/data/wiped/key', { data: { x: 1 } });
    await root.write('secret/data/wiped/key', { data: { x: 2 } });
    await root.delete('secret/metadata/wiped/key');

    expect(await failure(root.read('secret/data/wiped/key'))).toMatchObject({
      status: 404,
      body: { errors: [] },
    });
    expect((await failure(root.read('secret/metadata/wiped/key'))).status).toBe(404);
    expect((await failure(root.list('secret/metadata/wiped'))).status).toBe(404);
    // Deleting what is already gone is still a success, as in Vault.
    await root.delete('secret/metadata/wiped/key');
  });
});

describe('routing', () => {
  it('answers unsupported operations with 405 and unmounted paths with "no handler for route"', async () => {
    const deleteDestroy = await failure(root.delete('secret/destroy/list/b'));
    expect(deleteDestroy).toMatchObject({
      status: 405,
      body: { errors: ['1 error occurred:\n\t* unsupported operation\n\n'] },
    });
    // Listing goes to metadata/: a data path with the trailing slash LIST adds matches nothing.
    const listData = await failure(root.list('secret/data/list'));
    expect(listData).toMatchObject({
      status: 404,
      body: { errors: ['1 error occurred:\n\t* unsupported path\n\n'] },
    });

    const unmounted = await failure(root.read('nomount/data/x'));
    expect(unmounted).toMatchObject({
      status: 404,
      body: { errors: ['no handler for route "nomount/data/x". route entry not found.'] },
    });
    expect((await failure(root.read('secret/unknown/x'))).status).toBe(404);
  });

  it('serves the KV engine at a custom mount', async () => {
    const custom = await startVaultStandIn({ rootToken: 't', kvMount: 'deploykeys' });
    try {
      const client = vault({ endpoint: custom.addr, token: 't' });
      await client.write('deploykeys/data/a', { data: { v: 1 } });
      expect((await client.read('deploykeys/data/a')).data.data).toEqual({ v: 1 });
      expect((await failure(client.read('secret/data/a'))).status).toBe(404);
    } finally {
      await custom.close();
    }
  });
});
