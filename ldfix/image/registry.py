"""A thin Registry HTTP API v2 client over `requests`: Docker's naming rules, the bearer-token and basic auth
challenges, credentials from the Docker config (`auths`, `credsStore`, `credHelpers`), and every failure
turned into one ImageAccessError with a hint.

Why not a registry library: python-dxf has no manifest-list or platform handling and no credential helpers,
and oras pulls blobs to files (ldfix streams them through the layer merge, never touching disk). The part
that is protocol is small: a GET, a 401 with `WWW-Authenticate`, a token request, the same GET again."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ldfix.errors import ImageAccessError

HUB = "docker.io"
HUB_API = "registry-1.docker.io"
HUB_AUTH_KEY = "https://index.docker.io/v1/"
CONNECT_TIMEOUT = float(os.environ.get("LDFIX_CONNECT_TIMEOUT", "10"))
STALL_TIMEOUT = float(os.environ.get("LDFIX_STALL_TIMEOUT", "30"))  # seconds without a byte


@dataclass(frozen=True)
class RemoteName:
    """Where a reference lives: `ubuntu:22.04` is docker.io, repository library/ubuntu, reference 22.04."""

    domain: str  # docker.io, 127.0.0.1:5000, nvcr.io
    repository: str
    reference: str  # a tag or a sha256 digest

    @property
    def hub(self) -> bool:
        return self.domain == HUB

    def __str__(self) -> str:
        sep = "@" if self.reference.startswith("sha256:") else ":"
        return f"{self.domain}/{self.repository}{sep}{self.reference}"


def remote_name(repository: str, tag: str | None, digest: str | None) -> RemoteName:
    """Docker's rules: the first component is a registry when it has a `.` or a `:` or is `localhost`."""
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = HUB, repository
    if domain in ("index.docker.io", "registry-1.docker.io"):
        domain = HUB
    if domain == HUB and "/" not in path:
        path = "library/" + path
    return RemoteName(domain, path, digest or tag or "latest")


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:host.index("]")]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def base_url(domain: str) -> str:
    """HTTPS, except plain HTTP for loopback registries (as Docker treats them as insecure)."""
    if domain == HUB:
        return f"https://{HUB_API}"
    return ("http://" if is_loopback(domain) else "https://") + domain


# -- credentials ----------------------------------------------------------------------------------------

def _config() -> Mapping[str, Any]:
    path = os.path.join(os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker"), "config.json")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise ImageAccessError(f"cannot read {path}: {err}", "fix or remove the Docker config file") from None
    return data if isinstance(data, dict) else {}


def _auth_key_matches(key: str, domain: str) -> bool:
    bare = re.sub(r"^https?://", "", key).split("/", 1)[0]
    if domain == HUB:
        return bare in ("index.docker.io", "docker.io", "registry-1.docker.io")
    return bare == domain


def _helper(name: str, server: str) -> tuple[str, str] | None:
    try:
        out = subprocess.run([f"docker-credential-{name}", "get"], input=server, capture_output=True, text=True,
                             timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ImageAccessError(f"the credential helper docker-credential-{name} could not run: {err}",
                               "install it, or remove credsStore/credHelpers from the Docker config") from None
    if out.returncode != 0:
        return None  # "credentials not found": anonymous
    try:
        data = json.loads(out.stdout)
        return str(data["Username"]), str(data["Secret"])
    except (ValueError, KeyError, TypeError):
        raise ImageAccessError(f"docker-credential-{name} printed no credentials for {server}",
                               "log in again with docker login") from None


def credentials(domain: str) -> tuple[str, str] | None:
    """(user, secret) for a registry from the Docker config, or None for anonymous access."""
    cfg = _config()
    server = HUB_AUTH_KEY if domain == HUB else domain
    helpers = cfg.get("credHelpers") or {}
    for key, name in helpers.items() if isinstance(helpers, dict) else ():
        if _auth_key_matches(key, domain):
            return _helper(str(name), server)
    auths = cfg.get("auths") or {}
    for key, entry in auths.items() if isinstance(auths, dict) else ():
        if not _auth_key_matches(key, domain) or not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                user, _, secret = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise ImageAccessError(f"the Docker config's auth entry for {key} is not base64 user:password",
                                       "log in again with docker login") from None
            return user, secret
        if entry.get("username"):
            return str(entry["username"]), str(entry.get("password", ""))
    if cfg.get("credsStore"):
        return _helper(str(cfg["credsStore"]), server)
    return None


# -- HTTP -----------------------------------------------------------------------------------------------

def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


class Client:
    """One registry (or mirror) endpoint, with the token it earned for one repository."""

    def __init__(self, domain: str, url: str | None = None) -> None:
        import requests

        self.domain = domain
        self.url = (url or base_url(domain)).rstrip("/")
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "ldfix"
        self._creds: tuple[str, str] | bool | None = False  # False: not looked up yet
        self._auth: str | None = None

    def _credentials(self) -> tuple[str, str] | None:
        if self._creds is False:
            self._creds = credentials(self.domain)
        return self._creds if isinstance(self._creds, tuple) else None

    def _authorize(self, header: str, what: str) -> None:
        scheme, params = _challenge(header)
        creds = self._credentials()
        if scheme == "basic":
            if creds is None:
                raise ImageAccessError(f"{self.domain} wants a login to read {what}",
                                       f"docker login {self.domain} (credentials are read from the Docker config)")
            self._auth = "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
            return
        if scheme != "bearer" or "realm" not in params:
            raise ImageAccessError(f"{self.domain} asks for an authentication ldfix does not speak ({header[:80]})",
                                   "pull the image with docker and scan it from the daemon")
        query = {k: v for k, v in params.items() if k in ("service", "scope")}
        resp = self._send(params["realm"], {}, query=query, auth=creds, what="a token")
        if resp.status_code in (401, 403):
            raise ImageAccessError(f"{self.domain} refused a token for {what} (HTTP {resp.status_code})",
                                   f"docker login {self.domain}, and check the repository name")
        if resp.status_code != 200:
            raise ImageAccessError(f"the token service of {self.domain} answered HTTP {resp.status_code}",
                                   "try again later")
        try:
            body = resp.json()
            token = body.get("token") or body["access_token"]
        except (ValueError, KeyError, AttributeError):
            raise ImageAccessError(f"the token service of {self.domain} sent no token", "try again later") from None
        self._auth = f"Bearer {token}"

    def _send(self, url: str, headers: Mapping[str, str], query: Mapping[str, str] | None = None,
              auth: tuple[str, str] | None = None, stream: bool = False, what: str = "") -> Any:
        import requests

        try:
            return self.session.get(url, headers=dict(headers), params=query, auth=auth, stream=stream,
                                    timeout=(CONNECT_TIMEOUT, STALL_TIMEOUT), allow_redirects=True)
        except requests.exceptions.Timeout:
            raise ImageAccessError(f"{self.domain} did not answer within {STALL_TIMEOUT:g} s ({what or url})",
                                   "check the registry, or raise LDFIX_STALL_TIMEOUT") from None
        except requests.exceptions.RequestException as err:
            raise ImageAccessError(f"cannot reach {self.domain}: {_reason(err)}",
                                   "check the name, the network and any proxy settings") from None

    def get(self, path: str, what: str, accept: str | None = None, stream: bool = False,
            headers: Mapping[str, str] | None = None) -> Any:
        """GET {url}/v2/{path}, answering one auth challenge; errors become ImageAccessError."""
        want = dict(headers or {})
        if accept:
            want["Accept"] = accept
        for attempt in range(2):
            if self._auth:
                want["Authorization"] = self._auth
            resp = self._send(f"{self.url}/v2/{path}", want, stream=stream, what=what)
            if resp.status_code == 401 and attempt == 0 and resp.headers.get("WWW-Authenticate"):
                resp.close()
                self._authorize(resp.headers["WWW-Authenticate"], what)
                continue
            if resp.status_code in (200, 206):
                return resp
            resp.close()
            raise _http_error(self.domain, resp.status_code, what)
        raise _http_error(self.domain, 401, what)


def _reason(err: Exception) -> str:
    text = str(err)
    m = re.search(r"\] ([^')]+)", text) or re.search(r"(Connection refused|Name or service not known|timed out)", text)
    return (m.group(1) if m else text.splitlines()[0] if text else type(err).__name__)[:200]


def _http_error(domain: str, status: int, what: str) -> ImageAccessError:
    if status in (401, 403):
        return ImageAccessError(f"{domain} denied access to {what} (HTTP {status})",
                                f"docker login {domain}, and check the repository name")
    if status == 404:
        return ImageAccessError(f"{what} was not found on {domain} (HTTP 404)", "check the name, tag or digest")
    if status == 429:
        return ImageAccessError(f"{domain} is rate-limiting requests (HTTP 429)",
                                "wait and retry, log in (docker login) for a higher limit, or use --registry-mirror")
    return ImageAccessError(f"{domain} answered HTTP {status} for {what}", "try again later")
