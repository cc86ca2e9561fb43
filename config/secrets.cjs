/**
 * Which of the stage's secrets are Secrets Manager secrets. A secret setting in the stage file names an
 * SSM parameter; a name under SSM's reference path `/aws/reference/secretsmanager/<secret-name>` makes
 * the function read that Secrets Manager secret through SSM (shared/secrets.ts), and then its role also
 * needs `secretsmanager:GetSecretValue` on the secret itself. CloudFormation conditions cannot test a
 * prefix, so this decides it at packaging time, per secret:
 *
 *   ${file(./config/secrets.cjs):secretsManager.<key>.used}   "true" | "false"  (for a Condition)
 *   ${file(./config/secrets.cjs):secretsManager.<key>.arn}    the secret's ARN pattern, or AWS::NoValue
 *
 * The ARN ends in `-??????`: Secrets Manager appends six random characters to every secret's name.
 */
'use strict';

const REFERENCE = '/aws/reference/secretsmanager/';

/** @param {{ resolveVariable: (v: string) => Promise<unknown> }} ctx */
async function secretsManager({ resolveVariable }) {
  const secrets = /** @type {Record<string, unknown>} */ (await resolveVariable('self:custom.stage.secrets'));
  /** @type {Record<string, { used: string; arn: unknown }>} */
  const out = {};
  for (const [key, value] of Object.entries(secrets ?? {})) {
    const name =
      typeof value === 'string' && value.startsWith(REFERENCE) ? value.slice(REFERENCE.length) : '';
    if (name.includes('${') || name.includes('*')) {
      throw new Error(`secrets.${key}: "${value}" is not a Secrets Manager secret name`);
    }
    out[key] = name
      ? {
          used: 'true',
          arn: {
            'Fn::Sub': `arn:\${AWS::Partition}:secretsmanager:\${AWS::Region}:\${AWS::AccountId}:secret:${name}-??????`,
          },
        }
      : { used: 'false', arn: { Ref: 'AWS::NoValue' } };
  }
  return out;
}

module.exports = { secretsManager };
