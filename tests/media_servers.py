"""Local servers that serve contacts' media the way each provider does, for media downloads.

- ``WhatsAppMediaServer``: ``GET /{version}/{media_id}`` (Bearer) answers the media's URL, size
  and type as the Graph API does; ``GET /lookaside/{media_id}`` (Bearer) the bytes.
- ``TelegramFileServer``: ``GET /bot{token}/getFile?file_id=`` answers the file's path;
  ``GET /file/bot{token}/{path}`` the bytes.
- ``PlainFileServer``: ``GET /media/{name}`` the bytes, optionally behind basic auth (Twilio's
  MediaUrl) and optionally without a Content-Length (chunked), as some servers send.

Each records the requests it got and answers wrong credentials as its provider does.
"""

from __future__ import annotations

import base64
import hashlib
import socket
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from aiohttp import web


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file a server can serve."""

    data: bytes
    mime_type: str

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the bytes, as the event contract carries it."""
        return hashlib.sha256(self.data).hexdigest()


class _FileServer:
    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}
        self.paths: list[str] = []
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _graph_error(code: int, message: str, status: int) -> web.Response:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbC"}
    return web.json_response({"error": error}, status=status)


class WhatsAppMediaServer(_FileServer):
    """The Graph API's media endpoints; ``files`` by media id."""

    def __init__(self, access_token: str) -> None:
        super().__init__()
        self.access_token = access_token

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/lookaside/{media_id}", self._download)
        app.router.add_get("/{version}/{media_id}", self._media_url)

    def _authorized(self, request: web.Request) -> bool:
        self.paths.append(request.path)
        return request.headers.get("Authorization") == f"Bearer {self.access_token}"

    async def _media_url(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _graph_error(190, "Invalid OAuth access token.", 401)
        media_id = request.match_info["media_id"]
        stored = self.files.get(media_id)
        if stored is None:
            return _graph_error(100, "Unsupported get request.", 400)
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "url": f"{self.base_url}/lookaside/{media_id}",
                "mime_type": stored.mime_type,
                "sha256": stored.sha256,
                "file_size": str(len(stored.data)),
                "id": media_id,
            }
        )

    async def _download(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.Response(status=401)
        stored = self.files.get(request.match_info["media_id"])
        if stored is None:
            return web.Response(status=404)
        return web.Response(body=stored.data, content_type=stored.mime_type)


class TelegramFileServer(_FileServer):
    """The Bot API's ``getFile`` and file download; ``files`` by file id."""

    def __init__(self, bot_token: str) -> None:
        super().__init__()
        self.bot_token = bot_token

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/{bot}/getFile", self._get_file)
        app.router.add_get("/file/{bot}/{path:.+}", self._download)

    async def _get_file(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        if request.match_info["bot"] != f"bot{self.bot_token}":
            body = {"ok": False, "error_code": 401, "description": "Unauthorized"}
            return web.json_response(body, status=401)
        file_id = request.query.get("file_id", "")
        stored = self.files.get(file_id)
        if stored is None:
            body = {"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"}
            return web.json_response(body, status=400)
        result = {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_size": len(stored.data),
            "file_path": f"photos/{file_id}.jpg",
        }
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        if request.match_info["bot"] != f"bot{self.bot_token}":
            return web.Response(status=404)
        file_id = request.match_info["path"].removeprefix("photos/").removesuffix(".jpg")
        stored = self.files.get(file_id)
        if stored is None:
            return web.Response(status=404)
        # As Telegram does: the type is not the file's.
        return web.Response(body=stored.data, content_type="application/octet-stream")


class PlainFileServer(_FileServer):
    """``GET /media/{name}``; with ``basic_auth`` (user, password) only for those."""

    def __init__(self, *, basic_auth: tuple[str, str] | None = None, chunked: bool = False):
        super().__init__()
        self.basic_auth = basic_auth
        self.chunked = chunked

    def url(self, name: str) -> str:
        """Where ``name`` is served."""
        return f"{self.base_url}/media/{name}"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/media/{name}", self._download)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        self.paths.append(request.path)
        if self.basic_auth is not None:
            user, password = self.basic_auth
            expected = base64.b64encode(f"{user}:{password}".encode()).decode()
            if request.headers.get("Authorization") != f"Basic {expected}":
                return web.json_response({"code": 20003, "message": "Authenticate"}, status=401)
        stored = self.files.get(request.match_info["name"])
        if stored is None:
            return web.Response(status=404)
        if not self.chunked:
            return web.Response(body=stored.data, content_type=stored.mime_type)
        response = web.StreamResponse(headers={"Content-Type": stored.mime_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(stored.data), 1024):
            await response.write(stored.data[start : start + 1024])
        await response.write_eof()
        return response
