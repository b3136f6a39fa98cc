# The test front end's server: jupyterlab_server's LabServerApp serving build/ (the bundle, schemas, themes).
import os
from jupyterlab_server import LabServerApp

HERE = os.path.dirname(os.path.abspath(__file__))


class GoferLabApp(LabServerApp):
    name = __name__
    extension_url = "/lab"
    default_url = "/lab"
    app_url = "/lab"
    load_other_extensions = True
    app_name = "Gofer button example app"
    app_version = "4.5"
    static_dir = os.path.join(HERE, "build")
    templates_dir = os.path.join(HERE, "templates")
    app_settings_dir = os.path.join(HERE, "build", "application_settings")
    schemas_dir = os.path.join(HERE, "build", "schemas")
    themes_dir = os.path.join(HERE, "build", "themes")
    user_settings_dir = os.path.join(HERE, "build", "user_settings")
    workspaces_dir = os.path.join(HERE, "build", "workspaces")


def _jupyter_server_extension_points():
    return [{"module": __name__, "app": GoferLabApp}]


if __name__ == "__main__":
    GoferLabApp.launch_instance()
