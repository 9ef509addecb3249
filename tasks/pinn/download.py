"""Download PINNacle's reference and coefficient files (needs internet).

`download_pinnacle(dest)` fetches the files the `pinn` task reads from the upstream
repository (github.com/i207M/PINNacle, MIT license), pinned to the commit
../shared/data/pinnacle/SOURCE.md describes, into `dest`, plus the license as
LICENSE.PINNacle. Point the task at the folder with `--data-root dest` (or
SYMSWEEP_DATA=dest). Files already present are kept unless `overwrite`; each is written
to a temporary name and renamed, so an interrupted download leaves no partial file.
Files whose upstream bytes are known here are checked against their SHA-256.
"""
from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path
from typing import Callable, Iterable

UPSTREAM_COMMIT = "6f8d69c9c84c41d19644e4ceebdc64c4a11d3adf"
BASE_URL = f"https://raw.githubusercontent.com/i207M/PINNacle/{UPSTREAM_COMMIT}"

# name -> SHA-256 of the upstream bytes where a copy was available to check (None: unknown)
FILES: dict[str, str | None] = {
    "burgers1d.dat": "3b6d31d895022b397330091ace59220167f0918c2ed616ed2ae5b1458eede5eb",
    "burgers2d_0.dat": None,
    "burgers2d_init_u_0.dat": None,
    "burgers2d_init_v_0.dat": None,
    "poisson1_cg_data.dat": "2b9873fa4175fc26a8d62a7c4ea0f3e3239f9106b25ba622a77fd95fafa48490",
    "poisson_boltzmann2d.dat": "439354e99e9d749c3ff1ae44065de502ac53e96479a74546e27b790802806578",
    "poisson_3d.dat": None,
    "poisson_a_coef.dat": "485675d7d7ab14e8cc9666a3b43cd897123e7dcfd653acb138bd3ad8e709e783",
    "poisson_f_coef.dat": "3d250e192decf1ecfac440507537d89c3c52103c14474248a1604d1a1515c808",
    "poisson_manyarea.dat": None,
    "heat_2d_coef_256.dat": None,
    "heat_darcy.dat": "c28092b1b7073841940909e87ef55c1d92cc492e83b526e803645e1415eefb30",
    "heat_complex.dat": None,
    "heat_longtime.dat": "0a97936a1f5b7a346d6a10bfe927702a0587ef1020416e33cbab299a3ee3e9c0",
    "lid_driven_a4.dat": "9920232758297eee09404d66a914522cc8285ea3a4d7a05f5e776c5fcac852f3",
    "ns_0_obstacle.dat": "13e1d9fa1584faf01a9757af1723b2050c68aefc93d64a5309bb1e222f23d465",
    "ns_long.dat": None,
    "darcy_2d_coef_256.dat": None,
    "wave_darcy.dat": None,
    "Kuramoto_Sivashinsky.dat": None,
    "grayscott.dat": None,
}
LICENSE_SHA256 = "bdd7a2ea18cf6c97ea84544dc6c4738277d47685629a2af15f1414f929ae26aa"


class DownloadError(RuntimeError):
    """A file could not be fetched, or its bytes are not the upstream ones."""


def download_pinnacle(dest: str | os.PathLike, files: Iterable[str] | None = None, overwrite: bool = False,
                      timeout_s: float = 120.0, progress: Callable[[str], None] | None = print) -> list[Path]:
    """Fetch PINNacle's files into `dest` (created if needed); return the paths now present.

    files:     names to fetch (default: every file the pinn task uses, see FILES).
    overwrite: fetch again even if a file exists.
    progress:  called with one line per file (None: silent).
    """
    names = list(FILES) if files is None else list(files)
    unknown = sorted(set(names) - set(FILES))
    if unknown:
        raise ValueError(f"unknown PINNacle files {unknown}; known: {', '.join(FILES)}")
    folder = Path(dest)
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(f"{BASE_URL}/LICENSE", "LICENSE.PINNacle", LICENSE_SHA256)]
    jobs += [(f"{BASE_URL}/ref/{name}", name, FILES[name]) for name in names]
    paths = []
    for url, name, sha in jobs:
        target = folder / name
        if target.exists() and not overwrite:
            if progress:
                progress(f"{name}: present, kept")
        else:
            _fetch(url, target, sha, timeout_s)
            if progress:
                progress(f"{name}: {target.stat().st_size:,} bytes")
        paths.append(target)
    return paths


def _fetch(url: str, target: Path, sha256: str | None, timeout_s: float) -> None:
    tmp = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(tmp, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"could not download {url}: {exc}") from exc
    if sha256 is not None and digest.hexdigest() != sha256:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{url}: SHA-256 {digest.hexdigest()} is not the upstream {sha256}")
    os.replace(tmp, target)
