# Gofer as a JupyterHub service: an example for operators (JupyterHub 2 or later; checked with
# JupyterHub 3.0). Copy what you need into your hub's jupyterhub_config.py.
# docs/jupyterhub.md explains each setting; test/e2e/jupyterhub.test.ts runs this setup against
# a real hub, proxy and Docker engine.
#
# The values below come from environment variables of the hub so this file can be used as is;
# replace them with plain values in your own configuration.
import os

c = get_config()  # noqa: F821 (provided by JupyterHub when it reads this file)

# The service's name sets the URL prefix the proxy routes to Gofer: /services/<name>/.
# Existing submit buttons post to fixed prefixes: gofer_submit to /services/gofer_nb/,
# otter-service's JupyterLab button to /services/otter_grade/ (see GOFER_ALIASES below).
GOFER_NAME = os.environ.get('GOFER_SERVICE_NAME', 'gofer')
# Where Gofer listens. For a managed service the hub passes it as JUPYTERHUB_SERVICE_URL and
# Gofer binds to its host and port; the proxy forwards /services/<name>/ there.
GOFER_URL = os.environ.get('GOFER_URL', 'http://127.0.0.1:8080')
# How to run Gofer: `gofer` when installed with npm, else e.g. "node /opt/gofer/bin/gofer.js".
GOFER_COMMAND = os.environ.get('GOFER_COMMAND', 'gofer').split()
GOFER_CONFIG = os.environ.get('GOFER_CONFIG', '/etc/gofer/gofer.yaml')
GOFER_WORKDIR = os.environ.get('GOFER_WORKDIR', '/var/lib/gofer')

# --- Variant A: the hub starts Gofer, restarts it when it exits, and stops it with the hub ------
c.JupyterHub.services = [
    {
        'name': GOFER_NAME,
        'url': GOFER_URL,
        'command': GOFER_COMMAND + ['--config', GOFER_CONFIG, 'serve'],
        # Relative paths in Gofer's configuration (dataDir) are relative to this directory.
        'cwd': GOFER_WORKDIR,
        # No 'api_token': the hub makes one and passes it as JUPYTERHUB_API_TOKEN.
        # The hub passes Gofer only PATH, LANG and its JUPYTERHUB_* variables: add what Gofer
        # needs from the environment here.
        'environment': {
            key: os.environ[key]
            for key in ('DOCKER_HOST', 'DATABASE_URL', 'GOFER_SECRET', 'GOFER_LOG_FORMAT', 'GOFER_LOG_LEVEL')
            if key in os.environ
        },
        # Learners who open Gofer's page ({prefix}me) log in through the hub without an extra
        # "authorize" page.
        'oauth_no_confirm': True,
    },
]

# --- Variant B: Gofer runs on its own (another machine, a container, systemd) ----------------
# The hub only routes /services/gofer/ to it and knows its token. Start Gofer with:
#   JUPYTERHUB_API_URL=http://<hub host>:8081/hub/api \
#   JUPYTERHUB_API_TOKEN=<the same token as below> \
#   JUPYTERHUB_SERVICE_NAME=gofer \
#   JUPYTERHUB_SERVICE_PREFIX=/services/gofer/ \
#   JUPYTERHUB_SERVICE_URL=http://0.0.0.0:8080 \
#   gofer --config /etc/gofer/gofer.yaml serve
# and the hub's API must be reachable from there (c.JupyterHub.hub_ip, or hub_connect_ip).
#
# c.JupyterHub.services = [
#     {
#         'name': 'gofer',
#         'url': 'http://gofer.internal:8080',          # where the proxy reaches Gofer
#         'api_token': os.environ['GOFER_HUB_TOKEN'],   # e.g. `openssl rand -hex 32`
#         'oauth_no_confirm': True,
#     },
# ]

# --- Old buttons -------------------------------------------------------------------------------
# Gofer also answers /services/gofer_nb/ and /services/otter_grade/ (server.legacyPrefixes,
# on by default), but the proxy forwards only the prefixes of services the hub knows. An entry
# with the same URL and no command adds the route without starting a second Gofer.
# Set GOFER_ALIASES="gofer_nb otter_grade" (or write the entries by hand).
for alias in os.environ.get('GOFER_ALIASES', '').split():
    c.JupyterHub.services.append({'name': alias, 'url': GOFER_URL})

# --- Who may use Gofer --------------------------------------------------------------------------
# Users need access to the service: JupyterHub checks it when a browser logs in to Gofer
# (OAuth), and it is the scope a service should require of tokens. Redefining the 'user' role
# replaces its defaults, so keep 'self'.
c.JupyterHub.load_roles = [
    {'name': 'user', 'scopes': ['self', f'access:services!service={GOFER_NAME}']},
    # A submit handler inside the single-user server that forwards notebooks with the server's
    # own token (JUPYTERHUB_API_TOKEN) needs the scope on the 'server' role too.
    {'name': 'server', 'scopes': ['users:activity!user', 'access:servers!user', f'access:services!service={GOFER_NAME}']},
]
# Instructors: hub admins see every submission, and so do the users listed as a course's
# `instructors` in Gofer's configuration.
# c.Authenticator.admin_users = {'instructor'}
