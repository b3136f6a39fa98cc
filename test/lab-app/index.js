import { PageConfig, URLExt } from '@jupyterlab/coreutils';
// eslint-disable-next-line no-undef
__webpack_public_path__ = URLExt.join(PageConfig.getOption('fullStaticUrl'), '/');
require('./build/style.js');

window.addEventListener('load', async function () {
  const { JupyterLab } = require('@jupyterlab/application');
  const mods = [
    require('@jupyterlab/application-extension'),
    require('@jupyterlab/apputils-extension'),
    require('@jupyterlab/codemirror-extension'),
    require('@jupyterlab/docmanager-extension'),
    require('@jupyterlab/filebrowser-extension'),
    require('@jupyterlab/mainmenu-extension'),
    require('@jupyterlab/notebook-extension'),
    require('@jupyterlab/rendermime-extension'),
    require('@jupyterlab/theme-light-extension'),
    require('@jupyterlab/translation-extension'),
    require(process.env.GOFER_PLUGIN),
  ];
  const lab = new JupyterLab();
  lab.registerPluginModules(mods);
  await lab.start();
  await lab.restored;
  window.jupyterapp = lab;
});
