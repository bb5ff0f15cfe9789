/** The in-memory store (used by the core's unit tests) against the Store conformance suite. */
import { MemoryStore } from '../src/store/memory/memory-store.js';
import { storeConformance } from './store-conformance.js';

storeConformance('memory', async () => new MemoryStore());
