/**
 * Barrier table names: validated once, because they are written into SQL text.
 *
 * @module
 */

/** A validated table name, optionally qualified by a schema (PostgreSQL), database (MySQL) or attached database (SQLite). */
export interface TableName {
  /** `schema` of `schema.table`, or `undefined` when the name is not qualified. */
  readonly schema: string | undefined;
  /** The table itself. */
  readonly name: string;
  /** The name as written in SQL: `schema.table` or `table`. */
  readonly qualified: string;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Parses `table` or `schema.table`. Only plain identifiers (letters, digits, `_`) are accepted, so the name can
 * be written into SQL without quoting.
 * @throws Error when the name is not one or two plain identifiers.
 */
export function parseTableName(table: string): TableName {
  const parts = table.split('.');
  if (parts.length > 2 || !parts.every((p) => IDENTIFIER.test(p))) {
    throw new Error(
      `invalid barrier table name ${JSON.stringify(table)}: use "table" or "schema.table" with letters, digits and _ only`,
    );
  }
  const [first, second] = parts as [string, string | undefined];
  return second === undefined
    ? { schema: undefined, name: first, qualified: first }
    : { schema: first, name: second, qualified: table };
}
