#!/usr/bin/env node
// The deploy rehearsal's IAM evaluator: a long-lived process that judges
// requests with @cloud-copilot/iam-simulate (identity policies, a resource
// policy, same- and cross-account rules, every IAM condition operator).
//
// Protocol: one JSON object per line on stdin, one answer per line on stdout,
// in the same order.
//
//   request  {"id": 7, "principal": "arn:aws:sts::111111111111:assumed-role/R/s"
//             | "arn:aws:iam::111111111111:role/R",
//             "action": "kms:CreateGrant",
//             "resource": "arn:aws:kms:us-west-1:111111111111:key/...",
//             "resourceAccount": "111111111111",
//             "context": {"kms:ViaService": "rds.us-west-1.amazonaws.com", ...},
//             "identityPolicies": [{"name": "R/Inline", "policy": {...}}],
//             "resourcePolicy": {...} | null}
//   answer   {"id": 7, "decision": "Allowed" | "ImplicitlyDenied" |
//             "ExplicitlyDenied" | "Error", "reason": "...",
//             "allowedBy": [...], "grants": [...], "deniedBy": [...],
//             "ignoredContextKeys": [...]}
// `grants` are iam-simulate's grant reasons (policy type, policy name,
// statement id and index): the statements that allowed the request.
//
// A request {"id": N, "ping": true} answers {"id": N, "pong": true} (start-up
// handshake). The process ends when stdin closes.
//
// Strict mode: the request is judged exactly as given; a condition key the
// request does not carry is absent (as in AWS), never "unknown".

import { createInterface } from 'node:readline'
import { getDenialReasons, getGrantReasons, runSimulation } from '@cloud-copilot/iam-simulate'

/** Words for iam-simulate's policy types, as a denial reason reads them. */
const POLICY_WORDS = {
  identity: 'identity policy',
  resource: 'resource policy',
  scp: 'service control policy',
  rcp: 'resource control policy',
  pb: 'permissions boundary',
  vpce: 'VPC endpoint policy'
}

/** Why a request is denied, in one line. */
function denialReason(decision, denials, crossAccount, req) {
  if (decision === 'ExplicitlyDenied') {
    const explicit = denials.filter((d) => d.denialType === 'Explicit')
    const where = explicit
      .map((d) => `${POLICY_WORDS[d.policyType] ?? d.policyType} statement ${d.statementId ?? '#' + d.statementIndex}`)
      .join(', ')
    return `explicitly denied by ${where || 'a Deny statement'}`
  }
  const missing = [...new Set(denials.map((d) => POLICY_WORDS[d.policyType] ?? d.policyType))]
  if (crossAccount && req.resourcePolicy) {
    return `cross-account request not allowed by the ${missing.join(' and ') || 'policies'} (the identity policy and the resource policy must both allow it)`
  }
  if (!req.resourcePolicy || missing.length === 0) {
    return crossAccount
      ? 'cross-account request and the resource has no policy that allows it'
      : 'no identity policy statement allows it'
  }
  return `no Allow in the ${missing.join(' or ')}`
}

function grantsOf(grants) {
  return grants.map((g) =>
    g.policyType === 'resource'
      ? `resource policy ${g.statementId ?? '#' + g.statementIndex}`
      : `${g.policyIdentifier} ${g.statementId ?? '#' + g.statementIndex}`
  )
}

async function judge(req) {
  const simulation = {
    request: {
      principal: req.principal,
      action: req.action,
      resource: { resource: req.resource, accountId: req.resourceAccount },
      contextVariables: req.context ?? {}
    },
    identityPolicies: req.identityPolicies ?? [],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: req.resourcePolicy ?? undefined
  }
  const out = await runSimulation(simulation, { simulationMode: 'Strict' })
  if (out.resultType === 'error') {
    const details = Object.entries(out.errors)
      .filter(([k]) => k !== 'message')
      .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
    return { decision: 'Error', reason: [out.errors.message, ...details].join('; '), errors: out.errors }
  }
  const result = out.resultType === 'single' ? out.result : out.results[0]
  const decision = out.overallResult
  const analysis = result?.analysis
  const principalAccount = (req.principal.split(':')[4] ?? '').trim()
  const crossAccount = principalAccount !== req.resourceAccount
  const answer = {
    decision,
    ignoredContextKeys: result?.ignoredContextKeys ?? []
  }
  if (decision === 'Allowed') {
    const grants = analysis ? getGrantReasons(analysis) : []
    answer.grants = grants
    answer.allowedBy = grantsOf(grants)
    answer.reason = `allowed by ${answer.allowedBy.join(', ') || 'policy'}`
  } else {
    const denials = analysis ? getDenialReasons(analysis) : []
    answer.deniedBy = denials.map((d) => d.policyType)
    answer.reason = denialReason(decision, denials, crossAccount, req)
  }
  return answer
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
for await (const line of lines) {
  if (!line.trim()) continue
  let req
  try {
    req = JSON.parse(line)
  } catch (e) {
    process.stdout.write(JSON.stringify({ id: null, decision: 'Error', reason: `not JSON: ${e.message}` }) + '\n')
    continue
  }
  if (req.ping) {
    process.stdout.write(JSON.stringify({ id: req.id, pong: true }) + '\n')
    continue
  }
  let answer
  try {
    answer = await judge(req)
  } catch (e) {
    answer = { decision: 'Error', reason: `evaluator failed: ${e.message}` }
  }
  process.stdout.write(JSON.stringify({ id: req.id, ...answer }) + '\n')
}
