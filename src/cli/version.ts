import { createRequire } from "node:module";

// Read from package.json so the CLI, the image and the operator never disagree.
const require = createRequire(import.meta.url);
const pkg = require("../../package.json") as { version: string };

export const version: string = pkg.version;
