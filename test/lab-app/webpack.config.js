// Builds the test front end: JupyterLab's core plugins and the Submit button's plugin, in one bundle.
const path = require('path');
const webpack = require('webpack');
const { Build } = require('@jupyterlab/builder');
const baseConfig = require('@jupyterlab/builder/lib/webpack.config.base');
const { merge } = require('webpack-merge');

const plugin = path.resolve(__dirname, '../../extensions/jupyterlab-gofer/lib/index.js');
const names = Object.keys(require('./package.json').dependencies).filter((n) => n !== '@jupyterlab/builder');
// schemas and themes where jupyterlab_server serves them from (build/schemas, build/themes)
const extras = Build.ensureAssets({ packageNames: names, output: path.resolve(__dirname, 'build') });

module.exports = [
  merge(baseConfig, {
    mode: 'development',
    devtool: false,
    entry: ['./index.js'],
    output: { path: path.resolve(__dirname, 'build'), filename: 'bundle.js' },
    // one copy of each @jupyterlab/* and @lumino/* package: this app's, also for the plugin
    resolve: { modules: [path.resolve(__dirname, 'node_modules'), 'node_modules'], fallback: { util: false } },
    plugins: [new webpack.DefinePlugin({ 'process.env.GOFER_PLUGIN': JSON.stringify(plugin) })],
  }),
  ...extras,
];
