'use strict';

// Local Serverless plugin: builds the Pillow layer (layer/build.py) before packaging, for the
// provider's runtime and architecture, and fails packaging when the layer does not match them.
// The same run compiles the function's bytecode and zips it with the sources into the function's
// package.artifact; after packaging, a copy goes next to the template (.serverless/ or --package DIR),
// where `sls deploy --package DIR` looks for it.
//
// It also skips osls's "compare with last deployed layer" lookup during a standalone `sls package`.
// osls (lib/plugins/aws/package/compile/layers.js, compileLayers -> compareWithLastLayer) always
// calls CloudFormation describeStacks while packaging a service with layers, so that `sls deploy`
// can reuse an identical, already uploaded layer. It has no setting to turn it off, and the call
// needs credentials and the network: offline it fails (or, without credentials, the AWS SDK probes
// the EC2 metadata address). Its only effects are marking the layer "already uploaded" for the
// upload step of the same process and pointing the template at the old S3 key; a standalone
// `sls package` uploads nothing, so skipping it there changes no artifact. `sls deploy` keeps the
// lookup (against LocalStack for --stage local).
//
// And `sls remove` always asks ECR whether the service's image repository exists, even for a
// service without container images; LocalStack's open-source edition has no ECR, so removal
// failed after deleting the stack (and ~30 s of retries). With no provider.ecr.images there is no
// repository to delete, so the check is answered "no" without a call.

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

class LayerBuildPlugin {
  constructor(serverless, options, { log } = {}) {
    this.serverless = serverless;
    this.options = options;
    this.log = log || { notice: console.log, warning: console.warn };
    this.hooks = {
      'before:package:createDeploymentArtifacts': () => this.buildLayer(),
      'before:package:compileLayers': () => this.skipDeployedLayerLookup(),
      'after:package:finalize': () => this.copyFunctionArtifact(),
      'before:remove:remove': () => this.skipEcrCheckWithoutImages(),
    };
  }

  isStandalonePackage() {
    const commands = (this.serverless.processedInput && this.serverless.processedInput.commands) || [];
    return commands.length === 1 && commands[0] === 'package';
  }

  buildLayer() {
    const { provider } = this.serverless.service;
    const runtime = provider.runtime;
    const arch = provider.architecture || 'x86_64';
    for (const name of this.serverless.service.getAllFunctions()) {
      const fn = this.serverless.service.getFunction(name);
      if ((fn.runtime || runtime) !== runtime || (fn.architecture || arch) !== arch) {
        throw new this.serverless.classes.Error(
          `Function ${name} overrides runtime/architecture; the Pillow layer is built for ${runtime}/${arch} only`
        );
      }
    }
    const python = process.env.LAYER_BUILD_PYTHON || 'python';
    const script = path.join(this.serverless.serviceDir, 'layer', 'build.py');
    const { artifact } = this.serverless.service.package;
    if (!artifact) {
      throw new this.serverless.classes.Error('serverless.yml must name the function zip in package.artifact');
    }
    const args = [script, '--runtime', runtime, '--arch', arch, '--function-code', artifact];
    this.log.notice(`Building the Pillow layer and the function's bytecode: ${python} ${args.join(' ')}`);
    const result = spawnSync(python, args, { cwd: this.serverless.serviceDir, stdio: 'inherit' });
    if (result.error || result.status !== 0) {
      throw new this.serverless.classes.Error(
        `Pillow layer build failed (${result.error ? result.error.message : `exit ${result.status}`}): ` +
          `run "${python} ${args.join(' ')}" to see why`
      );
    }
  }

  copyFunctionArtifact() {
    const { artifact } = this.serverless.service.package;
    if (!artifact) return;
    const packageDir = this.options.package || path.join(this.serverless.serviceDir, '.serverless');
    fs.copyFileSync(path.resolve(this.serverless.serviceDir, artifact), path.join(packageDir, path.basename(artifact)));
  }

  skipDeployedLayerLookup() {
    if (!this.isStandalonePackage()) return;
    const compiler = this.serverless.pluginManager.plugins.find(
      (plugin) => typeof plugin.compareWithLastLayer === 'function'
    );
    if (!compiler) {
      this.log.warning('osls layer compiler not found: cannot skip the deployed-layer lookup');
      return;
    }
    compiler.compareWithLastLayer = async () => {};
    this.log.notice('sls package: skipped the deployed-layer lookup (no AWS call while packaging)');
  }

  skipEcrCheckWithoutImages() {
    const { ecr } = this.serverless.service.provider;
    if (ecr && ecr.images && Object.keys(ecr.images).length > 0) return;
    const remover = this.serverless.pluginManager.plugins.find(
      (plugin) => typeof plugin.checkIfEcrRepositoryExists === 'function' && typeof plugin.removeEcrRepository === 'function'
    );
    if (remover) remover.checkIfEcrRepositoryExists = async () => false;
  }
}

module.exports = LayerBuildPlugin;
