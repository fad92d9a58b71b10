#!/usr/bin/env node
// Writes proto/api.proto from the CRI wire schema (a protobufjs JSON descriptor of package
// runtime.v1) with our own brief comments. The schema is the contract: names, numbers,
// types, repeated and map shapes and streaming flags come from it unchanged; the comments
// below are ours. Run: node scripts/gen-proto.js ../shared/cri-api/runtime-v1.json
// test/proto.test.ts checks that proto/api.proto still matches the schema.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const schemaPath = process.argv[2] || path.join(__dirname, '..', '..', 'shared', 'cri-api', 'runtime-v1.json');
const out = process.argv[3] || path.join(__dirname, '..', 'proto', 'api.proto');
const schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
const pkg = schema.nested.runtime.nested.v1;

// Our comments: one line for each service and RPC, and for the messages and enums a
// reader meets first. Anything not listed here gets no comment.
const comments = {
  RuntimeService: 'Pod sandbox and container lifecycle, stats, events and runtime status.',
  'RuntimeService.Version': 'Names the runtime and the CRI version it speaks.',
  'RuntimeService.RunPodSandbox': 'Creates and starts a pod sandbox: namespaces, shm, network; ready on return.',
  'RuntimeService.StopPodSandbox': 'Stops every container of the sandbox and releases its network; idempotent.',
  'RuntimeService.RemovePodSandbox': 'Removes a sandbox and its containers; a missing sandbox is not an error.',
  'RuntimeService.PodSandboxStatus': 'Reports the state, network and namespace options of one sandbox.',
  'RuntimeService.ListPodSandbox': 'Lists sandboxes matching an optional filter.',
  'RuntimeService.StreamPodSandboxes': 'ListPodSandbox delivered in several messages.',
  'RuntimeService.CreateContainer': 'Creates a container in a sandbox; it does not run until StartContainer.',
  'RuntimeService.StartContainer': 'Starts a created container.',
  'RuntimeService.StopContainer': 'Stops a running container, SIGKILL after the timeout; idempotent.',
  'RuntimeService.RemoveContainer': 'Removes a container, killing it if needed; a missing one is not an error.',
  'RuntimeService.ListContainers': 'Lists containers matching an optional filter.',
  'RuntimeService.StreamContainers': 'ListContainers delivered in several messages.',
  'RuntimeService.ContainerStatus': 'Reports the state, exit, mounts and resources of one container.',
  'RuntimeService.UpdateContainerResources': 'Applies new resource limits to a running container.',
  'RuntimeService.ReopenContainerLog': 'Reopens a container log file after kubelet rotated it.',
  'RuntimeService.ExecSync': 'Runs a command in a container and returns its output and exit code.',
  'RuntimeService.Exec': 'Prepares a streaming exec session and returns its URL.',
  'RuntimeService.Attach': 'Prepares a streaming attach session and returns its URL.',
  'RuntimeService.PortForward': 'Prepares a streaming port-forward session and returns its URL.',
  'RuntimeService.ContainerStats': 'Resource usage of one container.',
  'RuntimeService.ListContainerStats': 'Resource usage of containers matching a filter.',
  'RuntimeService.StreamContainerStats': 'ListContainerStats delivered in several messages.',
  'RuntimeService.PodSandboxStats': 'Resource usage of one sandbox and its containers.',
  'RuntimeService.ListPodSandboxStats': 'Resource usage of sandboxes matching a filter.',
  'RuntimeService.StreamPodSandboxStats': 'ListPodSandboxStats delivered in several messages.',
  'RuntimeService.UpdateRuntimeConfig': 'Passes runtime configuration from kubelet (the pod CIDR).',
  'RuntimeService.Status': 'Runtime and network readiness conditions.',
  'RuntimeService.CheckpointContainer': 'Checkpoints a container (CRIU).',
  'RuntimeService.GetContainerEvents': "Streams container lifecycle events for kubelet's evented PLEG.",
  'RuntimeService.ListMetricDescriptors': 'Describes the metrics ListPodSandboxMetrics returns.',
  'RuntimeService.ListPodSandboxMetrics': "Metrics of every sandbox, in the descriptors' shape.",
  'RuntimeService.StreamPodSandboxMetrics': 'ListPodSandboxMetrics delivered in several messages.',
  'RuntimeService.RuntimeConfig': 'Runtime configuration kubelet must match, such as the cgroup driver.',
  'RuntimeService.UpdatePodSandboxResources': "Applies new resources to a sandbox's pod-level cgroup.",
  ImageService: 'Images on the node: list, status, pull, remove, filesystem usage.',
  'ImageService.ListImages': 'Lists images matching an optional filter.',
  'ImageService.StreamImages': 'ListImages delivered in several messages.',
  'ImageService.ImageStatus': 'Reports one image; an unknown image yields an empty image field.',
  'ImageService.PullImage': 'Pulls an image with optional credentials and returns its reference.',
  'ImageService.RemoveImage': 'Removes an image; a missing image is not an error.',
  'ImageService.ImageFsInfo': 'Bytes and inodes used by the image and container filesystems.',
  PodSandboxConfig: 'Everything needed to create a pod sandbox.',
  PodSandboxMetadata: 'Identifies a pod: name, uid, namespace and the attempt number.',
  ContainerConfig: 'Everything needed to create a container.',
  ContainerMetadata: 'Identifies a container within its pod: name and attempt.',
  LinuxContainerResources: 'cgroup resource settings of a container.',
  LinuxContainerSecurityContext: 'Linux security settings of a container.',
  LinuxSandboxSecurityContext: 'Linux security settings of a sandbox.',
  NamespaceOption: 'Which namespaces are shared with the pod, the node or a target container.',
  AuthConfig: 'Registry credentials; the secret fields are redacted from logs.',
  ImageSpec: 'An image reference with its annotations.',
  ContainerEventResponse: "One container lifecycle event with the pod's status at that time.",
  Protocol: 'Transport protocol of a port mapping.',
  MountPropagation: 'How mounts propagate between host and container.',
  NamespaceMode: 'Where a namespace lives: pod, container, node or a target container.',
  PodSandboxState: 'Whether a sandbox is ready.',
  ContainerState: 'Lifecycle state of a container.',
  ContainerEventType: 'Kinds of container lifecycle event.',
  CgroupDriver: 'How cgroups are managed on the node.',
};

const lines = [];
const emit = (indent, s) => lines.push(`${'  '.repeat(indent)}${s}`);
const comment = (indent, key) => {
  if (comments[key]) emit(indent, `// ${comments[key]}`);
};

function fieldOptions(f) {
  const opts = Object.entries(f.options || {}).map(([k, v]) => `${k} = ${v}`);
  return opts.length ? ` [${opts.join(', ')}]` : '';
}

function writeEnum(indent, name, e, key) {
  comment(indent, key);
  emit(indent, `enum ${name} {`);
  for (const [k, v] of Object.entries(e.values)) emit(indent + 1, `${k} = ${v};`);
  emit(indent, '}');
}

function writeMessage(indent, name, m, key) {
  comment(indent, key);
  emit(indent, `message ${name} {`);
  for (const [nname, n] of Object.entries(m.nested || {})) {
    if (n.values) writeEnum(indent + 1, nname, n, `${key}.${nname}`);
    else writeMessage(indent + 1, nname, n, `${key}.${nname}`);
  }
  for (const [fname, f] of Object.entries(m.fields || {})) {
    const name = f.protoName || fname;
    const type = f.keyType ? `map<${f.keyType}, ${f.type}>` : `${f.rule === 'repeated' ? 'repeated ' : ''}${f.type}`;
    emit(indent + 1, `${type} ${name} = ${f.id}${fieldOptions(f)};`);
  }
  emit(indent, '}');
}

emit(0, '// The Kubernetes Container Runtime Interface, package runtime.v1, as nodecri serves it.');
emit(0, '// Written from the CRI wire schema (k8s.io/cri-api v0.36.3): names, field numbers, types');
emit(0, '// and streaming flags are the contract with kubelet and crictl and must not change.');
emit(0, '// Regenerate with: node scripts/gen-proto.js <path to runtime-v1.json>');
emit(0, 'syntax = "proto3";');
emit(0, '');
emit(0, 'package runtime.v1;');
emit(0, '');
for (const [k, v] of Object.entries(pkg.options || {})) emit(0, `option ${k} = ${JSON.stringify(v)};`);
for (const [name, def] of Object.entries(pkg.nested)) {
  emit(0, '');
  if (def.methods) {
    comment(0, name);
    emit(0, `service ${name} {`);
    for (const [mname, m] of Object.entries(def.methods)) {
      comment(1, `${name}.${mname}`);
      const stream = m.responseStream ? 'stream ' : '';
      const reqStream = m.requestStream ? 'stream ' : '';
      emit(1, `rpc ${mname}(${reqStream}${m.requestType}) returns (${stream}${m.responseType}) {}`);
    }
    emit(0, '}');
  } else if (def.values) {
    writeEnum(0, name, def, name);
  } else {
    writeMessage(0, name, def, name);
  }
}
fs.writeFileSync(out, `${lines.join('\n')}\n`);
console.log(`wrote ${out}`);
