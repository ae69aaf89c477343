'use strict';

// Local Serverless plugin: the deploy's names are checked before anything is packaged, and a stage
// that attaches to an existing bucket gets the bucket's notification merged in after the deploy.
//
// Names. CloudFormation only finds out halfway through a deploy that a role name is over IAM's 64
// characters or a bucket name has a capital letter; then it rolls back what it created. So the
// stage, the region and every name derived from them are checked first, with the rule broken and
// the longest stage that would fit.
//
// Existing buckets. With params.<stage>.existingBucket the stack creates no bucket, and CloudFormation
// cannot add a notification to a bucket it does not own. After `sls deploy`, the bucket's current
// notification configuration is read, this stage's three Lambda configurations (ids
// `<service>-<stage>-<event>`) replace any earlier ones of the same ids, and everything else (other
// functions, queues, topics, EventBridge) is written back as it was. `sls remove` takes ours out the
// same way. S3 refuses two configurations whose events and key filters overlap: if another function
// already gets every ObjectCreated event of the bucket, the attach fails with S3's message.
// With params.<stage>.trigger eventbridge, attaching instead turns on the bucket's delivery to
// EventBridge (the stack's rule does the rest); detaching leaves it on, since other rules may use it.

const NAME_RULES = {
  stage: /^[a-z0-9][a-z0-9-]*$/,
  region: /^[a-z]{2}(-[a-z]+)+-\d+$/,
  bucket: /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
};
const ACCOUNT_ID_LENGTH = 12;
const LIMITS = { role: 64, bucket: 63, function: 64, queue: 80 };
const EVENTS = ['s3:ObjectCreated:*', 's3:ObjectRemoved:*', 's3:LifecycleExpiration:*'];
const CHOICES = { trigger: ['s3', 'eventbridge'], batchRole: ['true', 'false'] };

function problems({ service, stage, region, existingBucket, thumbnailBucket, inventoryLocation = '', choices = {} }) {
  const found = [];
  for (const [param, value] of Object.entries(choices)) {
    if (!CHOICES[param].includes(String(value))) {
      found.push(`params.${stage}.${param} "${value}": use one of ${CHOICES[param].join(', ')}`);
    }
  }
  if (!NAME_RULES.stage.test(stage)) {
    found.push(`stage "${stage}": use lower-case letters, digits and hyphens (it becomes part of bucket names)`);
  }
  if (!NAME_RULES.region.test(region)) found.push(`region "${region}" is not an AWS region name`);
  const names = {
    role: `${service}-${stage}-${region}-lambdaRole`,
    function: `${service}-${stage}-thumbnail`,
    queue: `${service}-${stage}-thumbnail-failures`,
  };
  if (!existingBucket) names.bucket = `${service}-${stage}-${region}-${'0'.repeat(ACCOUNT_ID_LENGTH)}`;
  for (const [kind, name] of Object.entries(names)) {
    if (name.length > LIMITS[kind]) {
      const longest = stage.length - (name.length - LIMITS[kind]);
      found.push(
        `the ${kind} name ${name} would be ${name.length} characters, over the limit of ${LIMITS[kind]}:` +
          ` use a stage of at most ${Math.max(longest, 0)} characters`
      );
    }
  }
  for (const [param, bucket] of Object.entries({ existingBucket, thumbnailBucket })) {
    if (bucket && (!NAME_RULES.bucket.test(bucket) || bucket.includes('..') || /^\d+\.\d+\.\d+\.\d+$/.test(bucket))) {
      found.push(`params.${stage}.${param} "${bucket}" is not a valid S3 bucket name`);
    }
  }
  const inventoryBucket = inventoryLocation.split('/')[0];
  if (inventoryLocation && !NAME_RULES.bucket.test(inventoryBucket)) {
    found.push(`params.${stage}.inventoryLocation "${inventoryLocation}" is not <bucket> or <bucket>/<prefix>`);
  }
  return found;
}

function configurationId(service, stage, event) {
  return `${service}-${stage}-${event.replace(/^s3:/, '').replace(/:\*$/, '')}`;
}

// The bucket's notification configuration with this stage's Lambda configurations set (functionArn
// and the s3 trigger) or taken out (null, or the eventbridge trigger, which turns on delivery to
// EventBridge instead); everything else is kept as it was.
function mergedNotifications(current, service, stage, functionArn, trigger = 's3') {
  const ours = new Set(EVENTS.map((event) => configurationId(service, stage, event)));
  const merged = { ...current };
  delete merged.ResponseMetadata;
  const others = (current.LambdaFunctionConfigurations || []).filter((c) => !ours.has(c.Id));
  if (functionArn && trigger === 'eventbridge') merged.EventBridgeConfiguration = {};
  merged.LambdaFunctionConfigurations = functionArn && trigger !== 'eventbridge'
    ? [
        ...others,
        ...EVENTS.map((event) => ({
          Id: configurationId(service, stage, event),
          LambdaFunctionArn: functionArn,
          Events: [event],
        })),
      ]
    : others;
  return merged;
}

class StageChecksPlugin {
  constructor(serverless, options, { log } = {}) {
    this.serverless = serverless;
    this.options = options;
    this.log = log || { notice: console.log };
    this.hooks = {
      'before:package:initialize': () => this.checkNames(),
      'after:deploy:deploy': () => this.attachExistingBucket(true),
      'before:remove:remove': () => this.attachExistingBucket(false),
    };
  }

  settings() {
    const provider = this.serverless.getProvider('aws');
    return {
      service: this.serverless.service.service,
      stage: provider.getStage(),
      region: provider.getRegion(),
      existingBucket: this.param('existingBucket'),
      thumbnailBucket: this.param('thumbnailBucket'),
      trigger: this.param('trigger'),
      inventoryLocation: this.param('inventoryLocation'),
      choices: Object.fromEntries(Object.keys(CHOICES).map((name) => [name, this.param(name)])),
    };
  }

  // A parameter as ${param:...} resolves it: --param, then params.<stage>, then params.default.
  param(name) {
    const fromCli = (this.options.param || []).find((item) => item.startsWith(`${name}=`));
    if (fromCli) return fromCli.slice(name.length + 1);
    const configured = (this.serverless.configurationInput || {}).params || {};
    const stage = configured[this.serverless.getProvider('aws').getStage()] || {};
    const value = stage[name] != null ? stage[name] : (configured.default || {})[name];
    return value == null ? '' : String(value);
  }

  checkNames() {
    const found = problems(this.settings());
    if (found.length) {
      throw new this.serverless.classes.Error(`Cannot deploy this stage:\n  - ${found.join('\n  - ')}`);
    }
  }

  async attachExistingBucket(attach) {
    const { service, stage, existingBucket, trigger } = this.settings();
    if (!existingBucket) return;
    const provider = this.serverless.getProvider('aws');
    let functionArn = null;
    if (attach) {
      const stackName = provider.naming.getStackName();
      const stacks = await provider.request('CloudFormation', 'describeStacks', { StackName: stackName });
      const outputs = stacks.Stacks[0].Outputs || [];
      functionArn = outputs.find((output) => output.OutputKey === 'ThumbnailFunctionArn').OutputValue;
    }
    const current = await provider.request('S3', 'getBucketNotificationConfiguration', { Bucket: existingBucket });
    await provider.request('S3', 'putBucketNotificationConfiguration', {
      Bucket: existingBucket,
      NotificationConfiguration: mergedNotifications(current, service, stage, functionArn, trigger),
    });
    this.log.notice(
      attach && trigger === 'eventbridge'
        ? `Turned on EventBridge delivery of the existing bucket ${existingBucket} (its notifications kept)`
        : attach
        ? `Attached the function to the existing bucket ${existingBucket} (its other notifications kept)`
        : `Detached the function from the existing bucket ${existingBucket} (its other notifications kept)`
    );
  }
}

module.exports = StageChecksPlugin;
module.exports.problems = problems;
module.exports.mergedNotifications = mergedNotifications;
