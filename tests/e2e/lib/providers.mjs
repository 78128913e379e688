// Config builders and clients for the Anthropic and AWS Bedrock tests: YAML for Anthropic,
// AWSBedrock and AWSAnthropic backends pointing at the fakes (Backend ip 127.0.0.1), with
// AnthropicAPIKey / AWSCredentials BackendSecurityPolicies, and an official @anthropic-ai/sdk
// client aimed at the gateway that records what it sent.
import Anthropic from '@anthropic-ai/sdk';
import { CLIENT_KEY, T } from './gateway.mjs';

export const ANTHROPIC_UPSTREAM_KEY = 'sk-ant-e2e-upstream-7a6b5c4d3e2f1a0b';

/** Static AWS test credentials (never real). */
export const AWS_KEYS = {
  env: { keyId: 'AKIAE2EENV0000000001', secret: 'e2eEnvSecret/Key+0123456789abcdefghijklmn', token: 'e2e-env-session-token-FwoGZXIvYXdzEB' },
  file: { keyId: 'AKIAE2EFILE000000002', secret: 'e2eFileSecret/Key+0123456789abcdefghijklm' },
  fileOther: { keyId: 'AKIAE2EFILEPROFILE03', secret: 'e2eProfileSecret/Key+0123456789abcdefghi', token: 'e2e-profile-session-token-IQoJb3JpZ2lu' },
  secret: { keyId: 'AKIAE2ESECRET0000004', secret: 'e2eBspSecret/Key+0123456789abcdefghijklmn' },
  secretProfile: { keyId: 'AKIAE2ESECRETPROF005', secret: 'e2eBspProfileSecret/Key+0123456789abcdef', token: 'e2e-bsp-profile-token-AgoJb3JpZ2lu' },
  sts: { keyId: 'ASIAE2ESTS0000000006', secret: 'e2eStsSecret/Key+0123456789abcdefghijklmno', token: 'e2e-sts-session-token-FQoGZXIvYXdz' },
  container: { keyId: 'ASIAE2ECONTAINER0007', secret: 'e2eContainerSecret/Key+0123456789abcdefg', token: 'e2e-container-session-token-IQoJ' },
  imds: { keyId: 'ASIAE2EIMDS000000008', secret: 'e2eImdsSecret/Key+0123456789abcdefghijklm', token: 'e2e-imds-session-token-IQoJb3Jp' },
};

/** creds map for FakeBedrock from AWS_KEYS entries. */
export function credsMap(...sets) {
  const m = {};
  for (const s of sets) m[s.keyId] = { secret: s.secret, token: s.token || null };
  return m;
}

/** An INI credentials file text for profiles { name: set }. */
export function credentialsFileText(profiles) {
  let s = '';
  for (const [name, c] of Object.entries(profiles)) {
    s += `[${name}]\naws_access_key_id = ${c.keyId}\naws_secret_access_key = ${c.secret}\n`;
    if (c.token) s += `aws_session_token = ${c.token}\n`;
    s += '\n';
  }
  return s;
}

function indent(text, n) {
  const pad = ' '.repeat(n);
  return text.split('\n').map((l) => (l.length ? pad + l : l)).join('\n');
}

/**
 * Multi-document YAML: one Gateway, one AIGatewayRoute with a rule per route
 * ({ model, backends: [{ name, override }] }), and per backend
 * { name, port, schema, version?, backendRef? (share a Backend), auth? } where auth is
 * { type: 'AnthropicAPIKey' | 'APIKey', key } or { type: 'AWSCredentials', region, credentialsFile?: { text, profile? } }.
 */
export function providerYaml({ port, routes, backends }) {
  const docs = [];
  docs.push(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: aigw-e2e
  namespace: default
spec:
  gatewayClassName: aigw-e2e
  listeners:
    - name: http
      protocol: HTTP
      port: ${port}`);
  const rules = routes.map((r) => `    - matches:
        - headers:
            - type: Exact
              name: x-ai-eg-model
              value: ${JSON.stringify(r.model)}
      backendRefs:
${r.backends.map((b) => `        - name: ${b.name}` + (b.override ? `\n          modelNameOverride: ${JSON.stringify(b.override)}` : '')).join('\n')}`).join('\n');
  docs.push(`apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: AIGatewayRoute
metadata:
  name: aigw-e2e-providers
  namespace: default
spec:
  parentRefs:
    - name: aigw-e2e
      kind: Gateway
      group: gateway.networking.k8s.io
  rules:
${rules}`);
  const seenBackends = new Set();
  for (const b of backends) {
    const ref = b.backendRef || b.name;
    docs.push(`apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: AIServiceBackend
metadata:
  name: ${b.name}
  namespace: default
spec:
  schema:
    name: ${b.schema}${b.version ? `\n    version: ${JSON.stringify(b.version)}` : ''}
  backendRef:
    name: ${ref}
    kind: Backend
    group: gateway.envoyproxy.io`);
    if (!seenBackends.has(ref) && b.port) {
      seenBackends.add(ref);
      docs.push(`apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata:
  name: ${ref}
  namespace: default
spec:
  endpoints:
    - ip:
        address: 127.0.0.1
        port: ${b.port}`);
    }
    const a = b.auth;
    if (!a) continue;
    if (a.type === 'AnthropicAPIKey' || a.type === 'APIKey') {
      const field = a.type === 'APIKey' ? 'apiKey' : 'anthropicAPIKey';
      docs.push(`apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: BackendSecurityPolicy
metadata:
  name: ${b.name}-key
  namespace: default
spec:
  targetRefs:
    - group: aigateway.envoyproxy.io
      kind: AIServiceBackend
      name: ${b.name}
  type: ${a.type}
  ${field}:
    secretRef:
      name: ${b.name}-key
      namespace: default`);
      docs.push(`apiVersion: v1
kind: Secret
metadata:
  name: ${b.name}-key
  namespace: default
type: Opaque
stringData:
  apiKey: ${a.key}`);
    } else if (a.type === 'AWSCredentials') {
      let aws = `  awsCredentials:\n    region: ${a.region}`;
      if (a.credentialsFile) {
        aws += `\n    credentialsFile:\n      secretRef:\n        name: ${b.name}-aws\n        namespace: default`;
        if (a.credentialsFile.profile) aws += `\n      profile: ${a.credentialsFile.profile}`;
      }
      docs.push(`apiVersion: aigateway.envoyproxy.io/v1alpha1
kind: BackendSecurityPolicy
metadata:
  name: ${b.name}-aws
  namespace: default
spec:
  targetRefs:
    - group: aigateway.envoyproxy.io
      kind: AIServiceBackend
      name: ${b.name}
  type: AWSCredentials
${aws}`);
      if (a.credentialsFile) {
        docs.push(`apiVersion: v1
kind: Secret
metadata:
  name: ${b.name}-aws
  namespace: default
type: Opaque
stringData:
  credentials: |
${indent(a.credentialsFile.text.trim(), 4)}`);
      }
    } else {
      throw new Error(`providerYaml: unknown auth type ${a.type}`);
    }
  }
  return docs.join('\n---\n') + '\n';
}

/** An official Anthropic SDK client aimed at the gateway (/anthropic); client.sent records each request. */
export function anthropicClient(gw, opts = {}) {
  const sent = [];
  const c = new Anthropic({
    apiKey: CLIENT_KEY,
    baseURL: `${gw.url}/anthropic`,
    maxRetries: 0,
    timeout: T(15_000),
    fetch: async (url, init = {}) => {
      sent.push({ url: String(url), method: init.method, headers: init.headers, body: init.body });
      return fetch(url, init);
    },
    ...opts,
  });
  c.sent = sent;
  return c;
}

/** Environment without any AWS variables of the test runner leaking into the gateway. */
export function cleanAwsEnv(extra = {}) {
  const env = {};
  for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) env[k] = null;
  // A HOME without ~/.aws so the shared-file default never applies by accident.
  return { ...env, AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: '/nonexistent/aws/config', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws/credentials', ...extra };
}
