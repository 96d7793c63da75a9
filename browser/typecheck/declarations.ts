// omni.d.ts is written by hand; this holds it to the code. The modules' JSDoc is checked
// (`checkJs`, under this project's strict options), their classes `@implements` the declared
// interfaces, and here each function omni.js exports, as its module types it, must be what
// omni.d.ts declares: a declared parameter the code does not take, or a declared result it
// does not give, fails `tsc`. (omni.js itself cannot be imported here: TypeScript reads
// omni.d.ts for it. browser/tests/declarations.test.mjs checks that it exports exactly
// these functions, and nothing omni.d.ts does not declare.)

import type * as Declared from "../../omni-runtime/js/omni.js";
import { connect } from "../../omni-runtime/js/client.js";
import { backoffDelay } from "../../omni-runtime/js/dialer.js";
import { decodeMsgpack, encodeMsgpack } from "../../omni-runtime/js/msgpack.js";
import { mux } from "../../omni-runtime/js/multiplex.js";

export const implemented = { backoffDelay, connect, decodeMsgpack, encodeMsgpack, mux } satisfies typeof Declared;
