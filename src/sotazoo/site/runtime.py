"""The site's browser runtime: onnxruntime-web (and the test driver playwright-core) from npm.

`npm/package.json` and its lockfile declare the versions; `ensure_runtime` runs `npm ci` into
`$SOTAZOO_HOME/npm/<lockfile hash>/` once, and the build copies the three files of the wasm-only
build next to the site's script. npm checks every package against the lockfile's integrity hash;
nothing of onnxruntime-web is committed to this repository.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from sotazoo.errors import SotazooError
from sotazoo.fileio import file_lock
from sotazoo.weights import home

# The wasm-only build: entry module, its Emscripten glue and the SIMD+threads binary.
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")


def _npm_spec_dir() -> Path:
    return Path(str(resources.files("sotazoo") / "site" / "npm"))


def runtime_dir() -> Path:
    lock = (_npm_spec_dir() / "package-lock.json").read_bytes()
    return home() / "npm" / hashlib.sha256(lock).hexdigest()[:12]


def ensure_runtime(*, progress: bool = True) -> Path:
    """`node_modules` of the site's npm packages, installed with `npm ci` when missing. One
    process installs at a time (two `npm ci` in one folder corrupt it); the others wait for it."""
    target = runtime_dir()
    if (target / ".installed").is_file():
        return target / "node_modules"
    with file_lock(home() / "locks" / f"npm-{target.name}.lock", what="the npm install"):
        return _install(target, progress=progress)


def _install(target: Path, *, progress: bool) -> Path:
    modules = target / "node_modules"
    if (target / ".installed").is_file():  # installed while we waited for the lock
        return modules
    npm = shutil.which("npm")
    if npm is None:
        raise SotazooError(
            "npm is not installed; the site needs it once to install onnxruntime-web "
            "(Debian: apt-get install npm)"
        )
    target.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(_npm_spec_dir() / name, target / name)
    if progress:
        print(f"installing onnxruntime-web with npm ci into {target} ...", flush=True)
    done = subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=target,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SotazooError(f"npm ci failed in {target}:\n{done.stderr.strip()[-2000:]}")
    (target / ".installed").write_text("ok\n")
    return modules


def copy_ort(dest: Path, *, progress: bool = True) -> list[Path]:
    """Copy the wasm-only onnxruntime-web files into `dest`."""
    dist = ensure_runtime(progress=progress) / "onnxruntime-web" / "dist"
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for name in ORT_FILES:
        src = dist / name
        if not src.is_file():
            raise SotazooError(f"onnxruntime-web has no {name} in {dist}; reinstall with npm ci")
        out.append(Path(shutil.copyfile(src, dest / name)))
    return out
