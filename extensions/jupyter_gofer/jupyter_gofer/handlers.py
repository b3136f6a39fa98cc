"""The handlers behind the Submit buttons: forward the saved notebook to Gofer, relay its status."""

import inspect
import json
import os
import re

from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

SUBMISSION_ID = r"[0-9a-fA-F-]{36}"


class Settings:
    """Where Gofer is, from the server's environment (set by the hub's spawner)."""

    def __init__(self, env=None):
        env = os.environ if env is None else env
        # Gofer's own address: it answers the submit prefix and the REST API (/api/v1) there
        self.url = (env.get("GOFER_URL") or "").rstrip("/")
        prefix = env.get("GOFER_PREFIX") or "/services/gofer/"
        self.prefix = "/" + prefix.strip("/") + "/"
        self.token = env.get("JUPYTERHUB_API_TOKEN") or ""
        self.timeout = float(env.get("GOFER_TIMEOUT_SECONDS") or 30)

    def problem(self):
        if not self.url:
            return "The Submit button is not set up: this server has no GOFER_URL. Tell your course staff."
        if not self.token:
            return "The Submit button works only in a server started by JupyterHub (there is no JUPYTERHUB_API_TOKEN). Open your notebook from JupyterHub."
        return None


def refusal(status, text, retry_after=None):
    """Gofer's answer to a refused request, as a sentence a learner can act on."""
    if status == 401:
        return "Gofer could not confirm who you are with JupyterHub. Log out of JupyterHub, log in again, and submit again."
    if status == 403:
        return f"{text} Ask your course staff if you think this is wrong."
    if status == 413:
        return f"{text} Clear large outputs (Cell, All Output, Clear), save, and submit again."
    if status == 429:
        wait = f" Wait {retry_after} s and submit again." if retry_after and retry_after not in text else ""
        return f"{text}{wait}"
    if status >= 500:
        return f"Gofer could not take your notebook right now ({status}). Try again in a minute; if it keeps failing, tell your course staff."
    return text


def _error_text(body):
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
            return parsed["error"].strip()
    except ValueError:
        pass
    return body.decode("utf-8", "replace").strip()[:500]


async def _maybe_await(value):
    return await value if inspect.isawaitable(value) else value


def make_handlers(base, settings):
    """The handler classes on top of the server's own API handler (notebook 6 or jupyter_server)."""

    class GoferHandler(base):
        def answer(self, status, payload):
            self.set_status(status)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(payload))

        async def gofer(self, method, path, body=None, headers=None):
            request = HTTPRequest(
                settings.url + path,
                method=method,
                body=body,
                headers={"Authorization": f"token {settings.token}", "Accept": "application/json", **(headers or {})},
                request_timeout=settings.timeout,
                follow_redirects=False,
            )
            try:
                return await AsyncHTTPClient().fetch(request, raise_error=False)
            except (OSError, HTTPClientError) as err:
                self.log.warning("gofer: %s %s%s failed: %s", method, settings.url, path, err)
                return None

        def relay_refusal(self, response):
            if response is None:
                return self.answer(502, {"error": "Gofer does not answer. Try again in a minute; if it keeps failing, tell your course staff."})
            retry = response.headers.get("Retry-After")
            self.answer(response.code, {"error": refusal(response.code, _error_text(response.body), retry), **({"retryAfter": int(retry)} if retry and retry.isdigit() else {})})

    class SubmitHandler(GoferHandler):
        @web.authenticated
        async def post(self):
            problem = settings.problem()
            if problem:
                return self.answer(503, {"error": problem})
            try:
                path = json.loads(self.request.body or b"{}").get("path")
            except (ValueError, AttributeError):
                path = None
            if not isinstance(path, str) or not path.endswith(".ipynb"):
                return self.answer(400, {"error": 'Send {"path": "<notebook>.ipynb"}: the saved notebook to submit.'})
            try:
                model = await _maybe_await(self.contents_manager.get(path.strip("/"), content=True, type="file", format="text"))
            except web.HTTPError as err:
                if err.status_code == 404:
                    return self.answer(404, {"error": f"There is no saved notebook at {path}. Save it first."})
                raise
            # the saved file's bytes, unparsed: Gofer stores and grades exactly what is on disk
            text = model["content"]
            body = b'{"nb": ' + text.encode("utf-8") + b"}"
            response = await self.gofer("POST", settings.prefix, body, {"Content-Type": "application/json"})
            if response is None or response.code != 200:
                return self.relay_refusal(response)
            receipt = json.loads(response.body)
            self.answer(200, {"id": receipt["id"], "duplicate": bool(receipt.get("duplicate")), "path": path})

    class StatusHandler(GoferHandler):
        @web.authenticated
        async def get(self, submission):
            problem = settings.problem()
            if problem:
                return self.answer(503, {"error": problem})
            response = await self.gofer("GET", f"/api/v1/submissions/{submission}")
            if response is None or response.code != 200:
                return self.relay_refusal(response)
            self.answer(200, json.loads(response.body))

    return SubmitHandler, StatusHandler


def _api_handler_base(app):
    if type(app).__module__.startswith("notebook"):
        from notebook.base.handlers import APIHandler
    else:
        from jupyter_server.base.handlers import APIHandler
    return APIHandler


def setup_handlers(app, settings=None):
    settings = settings or Settings()
    web_app = app.web_app
    base_url = web_app.settings["base_url"]
    submit, status = make_handlers(_api_handler_base(app), settings)
    prefix = base_url.rstrip("/") + "/gofer"
    web_app.add_handlers(".*$", [(re.escape(prefix) + r"/submit", submit), (re.escape(prefix) + rf"/submissions/({SUBMISSION_ID})", status)])
    problem = settings.problem()
    app.log.info("jupyter_gofer: Submit button handlers at %s/ (Gofer at %s)%s", prefix, settings.url or "?", f"; {problem}" if problem else "")
