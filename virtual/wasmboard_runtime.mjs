// The MicroPython runtime behind the virtual board (virtual/wasmboard.py).
//
// Runs MicroPython's own VM (the official WebAssembly port) and takes one
// JSON command per line on stdin:
//   {"op":"boot"}                  start a fresh runtime (a reset), keep the filesystem
//   {"op":"exec","code":"..."}     run code as a file, stream its stdout
//   {"op":"single","code":"..."}   run one REPL line (an expression's value is printed)
// and answers with JSON lines on stdout: {"out":"<latin-1 text>"} while code
// prints, {"wdt":<timeout ms>} / {"feed":true} for machine.WDT (the host keeps
// the watchdog: it outlives this runtime, as an ESP32's outlives a soft reset),
// then {"done":true,"error":<traceback or null>,"reset":null|"hard"|"soft"}.
//
// The board's flash is the in-memory filesystem of the runtime, mirrored to a
// host directory (argv[2]) after every command, so it survives resets and a
// killed runtime (an interrupted program) exactly as flash survives on a board.
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript/micropython.mjs";

const hostRoot = path.resolve(process.argv[2]);
const SKIP = new Set(["/dev", "/proc"]); // runtime internals, not flash

function send(obj) {
  fs.writeSync(1, JSON.stringify(obj) + "\n");
}

// stdout of the Python program: flushed per line and at the end of a command.
let pending = [];
function flushOut() {
  if (pending.length) {
    send({ out: Buffer.from(pending).toString("latin1") });
    pending = [];
  }
}

let mp = null;
let resetRequest = null;
// What the host saw last time, path -> "mtime:size" (files) or "dir".
let mirrored = new Map();

function walk(FS, dir, acc) {
  for (const name of FS.readdir(dir)) {
    if (name === "." || name === "..") continue;
    const p = dir === "/" ? "/" + name : dir + "/" + name;
    if (SKIP.has(p)) continue;
    const st = FS.stat(p);
    if (FS.isDir(st.mode)) {
      acc.set(p, "dir");
      walk(FS, p, acc);
    } else {
      acc.set(p, st.mtime.getTime() + ":" + st.size);
    }
  }
  return acc;
}

// Write what changed in the runtime's filesystem to the host directory.
function syncToHost() {
  const now = walk(mp.FS, "/", new Map());
  for (const [p, sig] of now) {
    if (sig === "dir") {
      if (mirrored.get(p) !== "dir") fs.mkdirSync(hostRoot + p, { recursive: true });
    } else if (mirrored.get(p) !== sig) {
      fs.mkdirSync(path.dirname(hostRoot + p), { recursive: true });
      fs.writeFileSync(hostRoot + p, mp.FS.readFile(p));
    }
  }
  const gone = [...mirrored.keys()].filter((p) => !now.has(p)).sort().reverse();
  for (const p of gone) fs.rmSync(hostRoot + p, { recursive: true, force: true });
  mirrored = now;
}

// Load the host directory into a fresh runtime's filesystem.
function loadFromHost(dir) {
  for (const name of fs.readdirSync(hostRoot + dir)) {
    const p = dir === "/" ? "/" + name : dir + "/" + name;
    const st = fs.statSync(hostRoot + p);
    if (st.isDirectory()) {
      mp.FS.mkdir(p);
      loadFromHost(p);
    } else {
      mp.FS.writeFile(p, fs.readFileSync(hostRoot + p));
    }
  }
}

const PRELUDE = `
import sys, _vboard
class _WDT:
    def __init__(self, id=0, timeout=5000):
        _vboard.wdt(timeout)
    def feed(self):
        _vboard.feed()
class _Machine:
    WDT = _WDT
    PWRON_RESET = 1
    HARD_RESET = 2
    WDT_RESET = 3
    DEEPSLEEP_RESET = 4
    SOFT_RESET = 5
    def reset(self):
        _vboard.reset("hard")
    def soft_reset(self):
        _vboard.reset("soft")
    def reset_cause(self):
        return _vboard.cause
    def unique_id(self):
        return b"\\x24\\x0a\\xc4\\x00\\x5e\\x01"
    def freq(self, *args):
        return 240000000
sys.modules["machine"] = _Machine()
del _Machine, _WDT

# The WebAssembly VFS raises the host's (Emscripten) errno numbers; an ESP32
# raises MicroPython's, e.g. "OSError: [Errno 2] ENOENT". Translate, so host
# tools parse errors as they would from a board.
import builtins, os as _os
_ERRNO = {44: 2, 20: 17, 31: 21, 54: 20, 55: 39, 28: 22, 2: 13, 63: 1, 8: 9, 51: 28, 29: 5, 43: 19}
def _board_errno(fn):
    def call(*args):
        try:
            return fn(*args)
        except OSError as e:
            raise OSError(_ERRNO.get(e.errno, e.errno))
    return call
class _Os:
    def __getattr__(self, name):
        return getattr(_os, name)
_bos = _Os()
for _name in ("listdir", "ilistdir", "stat", "mkdir", "rmdir", "remove", "unlink", "rename", "chdir", "statvfs"):
    if hasattr(_os, _name):
        setattr(_bos, _name, _board_errno(getattr(_os, _name)))
# A board's root holds only its files; the runtime's /dev and /proc are
# hidden, and ilistdir reports sizes as a board's VFS does.
def _board_ilistdir(path="."):
    full = path if path.startswith("/") else _os.getcwd().rstrip("/") + "/" + path
    for entry in _os.ilistdir(path):
        if full.rstrip("/") == "" and entry[0] in ("dev", "proc"):
            continue
        size = 0 if entry[1] & 0x4000 else _os.stat(full.rstrip("/") + "/" + entry[0])[6]
        yield (entry[0], entry[1], 0, size)
_bos.ilistdir = _board_errno(lambda path=".": list(_board_ilistdir(path)))
_bos.listdir = _board_errno(lambda path=".": [e[0] for e in _board_ilistdir(path)])
sys.modules["os"] = _bos
builtins.open = _board_errno(builtins.open)
del _Os, _bos, _name
`;

async function boot(cause) {
  mp = await loadMicroPython({
    stdout: (bytes) => {
      for (const b of bytes) pending.push(b);
      if (bytes.includes(10)) flushOut();
    },
    stderr: (bytes) => {
      for (const b of bytes) pending.push(b);
    },
    linebuffer: false,
  });
  for (const d of ["/tmp", "/home/web_user", "/home"]) {
    try { mp.FS.rmdir(d); } catch (e) { /* not there */ }
  }
  fs.mkdirSync(hostRoot, { recursive: true });
  loadFromHost("/");
  mirrored = walk(mp.FS, "/", new Map());
  mp.registerJsModule("_vboard", {
    cause,
    reset: (kind) => {
      resetRequest = kind;
      throw new Error("board reset");
    },
    wdt: (timeout) => {
      flushOut();
      send({ wdt: timeout });
    },
    feed: () => send({ feed: true }),
  });
  mp.runPython(PRELUDE);
}

function traceback(err) {
  // MicroPython prints tracebacks with CRLF on a serial console.
  return err.message.replace(/\r?\n/g, "\r\n");
}

async function run(cmd) {
  resetRequest = null;
  let error = null;
  try {
    if (cmd.op === "single") {
      mp.globals.set("_vboard_line", cmd.code);
      mp.runPython(
        "try:\n _vboard_v = eval(_vboard_line)\nexcept SyntaxError:\n _vboard_v = None\n exec(_vboard_line)\n" +
        "if _vboard_v is not None:\n print(repr(_vboard_v))\n"
      );
    } else {
      mp.runPython(cmd.code);
    }
  } catch (err) {
    if (resetRequest === null) {
      error = err.name === "PythonError" ? traceback(err) : String(err) + "\r\n";
    }
  }
  flushOut();
  syncToHost();
  send({ done: true, error, reset: resetRequest });
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  const cmd = JSON.parse(line);
  if (cmd.op === "boot") {
    await boot(cmd.cause || 1);
    send({ done: true, error: null, reset: null });
  } else if (cmd.op === "exec" || cmd.op === "single") {
    await run(cmd);
  } else if (cmd.op === "exit") {
    break;
  }
}
