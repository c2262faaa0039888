// The 32-bit half of bench_unit_heap.py: MicroPython's WebAssembly port
// (npm @micropython/micropython-webassembly-pyscript, 32-bit) runs a list of
// Python steps, each in its own runPython call: this port collects garbage
// only between calls. Reads {"files": {path: base64}, "steps": [code]} as
// JSON on stdin, writes the files into the VM's filesystem, prints each
// step's output.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const job = JSON.parse(Buffer.concat(chunks).toString());
const mp = await loadMicroPython({
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});
for (const [path, data] of Object.entries(job.files)) {
  mp.FS.mkdirTree(path.slice(0, path.lastIndexOf("/")) || "/");
  mp.FS.writeFile(path, Buffer.from(data, "base64"));
}
for (const step of job.steps) {
  mp.runPython(step);
}
