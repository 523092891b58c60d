// CSV exports open in spreadsheets, and many of their fields come from callers (job ids,
// repositories, token names, OIDC subjects). A field that a spreadsheet would read as a formula is
// neutralised by the exporter itself, whatever today's input validation happens to allow.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { appendAuditEvent } from '../../src/audit/audit.repository.ts';
import { exportAuditEvents } from '../../src/audit/audit-export.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

/** RFC 4180 rows, quotes and doubled quotes undone. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 1;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i += 1;
    } else field += c;
  }
  return rows;
}

const HOSTILE = ['-2-3-A1:B9', '=HYPERLINK("http://x","y")', '+1+1', '@SUM(A1:A2)', '\tcmd', '\r=1'];

it('starts no exported field with =, +, -, @, tab or carriage return', async () => {
  for (const value of HOSTILE) {
    await appendAuditEvent(database.db, {
      actor: value,
      action: 'key.requested',
      repository: value,
      jobId: value,
      provider: value,
    });
  }
  let csv = '';
  for await (const chunk of exportAuditEvents(database.db, {}, 'csv')) csv += chunk;
  const [header, ...rows] = parseCsv(csv);
  expect(rows).toHaveLength(HOSTILE.length);
  for (const row of rows) {
    for (const field of row) expect(field, `field ${JSON.stringify(field)}`).not.toMatch(/^[=+\-@\t\r]/);
  }
  const column = (name: string) => header!.indexOf(name);
  // The value is all there, behind one apostrophe, so nothing is lost to the reader.
  expect(rows.map((row) => row[column('jobId')])).toEqual(HOSTILE.map((value) => `'${value}`));
  expect(rows.map((row) => row[column('actor')])).toEqual(HOSTILE.map((value) => `'${value}`));
  expect(rows.map((row) => row[column('repository')])).toEqual(HOSTILE.map((value) => `'${value}`));

  // NDJSON is data, not a sheet: it keeps the values exactly.
  let ndjson = '';
  for await (const chunk of exportAuditEvents(database.db, {}, 'ndjson')) ndjson += chunk;
  const events = ndjson
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  expect(events.map((event) => event.jobId)).toEqual(HOSTILE);
});
