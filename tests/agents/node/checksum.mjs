#!/usr/bin/env node
// Reads a JSON array of task documents on stdin and prints the JSON array of their checksums,
// computed exactly as the reference agent checks them (agent.mjs: JCS by the `canonicalize` package).
import { taskChecksum } from './agent.mjs';

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  process.stdout.write(JSON.stringify(JSON.parse(input).map(taskChecksum)) + '\n');
});
