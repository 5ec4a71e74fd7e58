#!/usr/bin/env node
// Entry point of the `controller` command: runs the compiled CLI (`make build`).
import "../dist/src/cli/main.js";
