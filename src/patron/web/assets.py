"""Static files: Patron's own CSS/JS from the package, front-end libraries from ``npm ci``.

The libraries are never copied into the repository: package.json + package-lock.json pin them,
`make demo` / `make test` run `npm ci`, and this module serves the few files pages load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse

from patron.config import Settings
from patron.web.deps import Public

STATIC_DIR: Final = Path(__file__).parent / "static"
# name served at /static/vendor/<name> → file inside node_modules
VENDOR: Final = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "echarts.min.js": "echarts/dist/echarts.min.js",
    "jsQR.js": "jsqr/dist/jsQR.js",
}
_CACHE: Final = "public, max-age=86400"

router = APIRouter(include_in_schema=False, dependencies=[Depends(Public())])


def vendor_root(settings: Settings) -> Path:
    root = settings.assets_dir
    if not root.is_absolute():
        # Relative to the project checkout (where package.json is), not the working directory.
        here = Path(__file__).resolve()
        for parent in here.parents:
            if (parent / "package.json").exists():
                return parent / root
    return root


def missing_vendor_files(settings: Settings) -> list[str]:
    root = vendor_root(settings)
    return [rel for rel in VENDOR.values() if not (root / rel).is_file()]


@router.get("/static/vendor/{name}")
def vendor_file(name: str, request: Request) -> FileResponse:
    rel = VENDOR.get(name)
    path = vendor_root(request.app.state.settings) / rel if rel else None
    if path is None or not path.is_file():
        raise HTTPException(404, "Unknown asset; run `npm ci` (make demo does) to install it.")
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": _CACHE})


@router.get("/static/{name}")
def own_file(name: str) -> FileResponse:
    path = STATIC_DIR / name
    if "/" in name or not path.is_file():
        raise HTTPException(404, "No such file.")
    media = "text/css" if name.endswith(".css") else "text/javascript"
    if name.endswith(".svg"):
        media = "image/svg+xml"
    return FileResponse(path, media_type=media, headers={"Cache-Control": "no-cache"})
