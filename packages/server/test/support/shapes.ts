/**
 * V8's own view of object shapes, for tests of code that must not make a new hidden class on every call (each one
 * is old-space garbage, and the property reads that see them all go megamorphic). Uses V8's natives syntax,
 * switched on for the test process that imports this.
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--allow-natives-syntax');
const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;

/** Whether every one of `objects` has the hidden class of the first. */
export function oneHiddenClass(objects: readonly object[]): boolean {
  return objects.every((o) => haveSameMap(objects[0]!, o));
}
