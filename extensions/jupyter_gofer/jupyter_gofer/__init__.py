"""Submit the saved notebook to Gofer from the learner's own Jupyter server.

The server extension adds two handlers under the server's base URL:

* ``POST gofer/submit`` with ``{"path": "<notebook path>"}`` sends the notebook's saved bytes to
  Gofer with the server's own ``JUPYTERHUB_API_TOKEN`` and answers Gofer's receipt;
* ``GET gofer/submissions/<id>`` relays the submission's status and results.

It loads into the classic Notebook server 6.x and into jupyter_server 1.x and 2.x (JupyterLab 4,
Notebook 7). The buttons (a classic nbextension and a JupyterLab prebuilt extension) call these
handlers; neither needs a cookie or a login of its own.
"""

__version__ = "0.1.0"


def _jupyter_server_extension_points():
    return [{"module": "jupyter_gofer"}]


def _jupyter_server_extension_paths():
    return [{"module": "jupyter_gofer"}]


def _jupyter_nbextension_paths():
    return [{"section": "notebook", "src": "nbextension", "dest": "jupyter_gofer", "require": "jupyter_gofer/main"}]


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "jupyterlab-gofer"}]


def _load_jupyter_server_extension(app):
    from .handlers import setup_handlers

    setup_handlers(app)


# the classic Notebook server 6.x calls this name
load_jupyter_server_extension = _load_jupyter_server_extension
