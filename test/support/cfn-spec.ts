/**
 * Checks a CloudFormation template against the CloudFormation resource specification, as AWS CDK
 * publishes it on npm (`@aws-cdk/aws-service-spec`, built from the CloudFormation registry schemas):
 * every resource type exists; every property, at any depth, is known to its type, has the specified
 * shape (string, number, integer, boolean, list, map, tag, nested type, allowed values) and every
 * required property is present.
 *
 * An intrinsic function stands for a value only CloudFormation can compute, so it is accepted wherever
 * a value is expected, except `Fn::If`, whose two branches are both checked (`AWS::NoValue` meaning
 * "absent"). Scalars are accepted as CloudFormation coerces them: a number or boolean where a string
 * is expected, a numeric string where a number is.
 */
import { loadAwsServiceSpec } from '@aws-cdk/aws-service-spec';

type SpecDatabase = Awaited<ReturnType<typeof loadAwsServiceSpec>>;

/** The shapes of the specification's property types (@aws-cdk/service-spec-types, structurally). */
type PropertyType =
  | { type: 'string'; allowedValues?: string[] }
  | { type: 'integer'; allowedValues?: number[] }
  | { type: 'number' | 'boolean' | 'json' | 'date-time' | 'null' | 'tag' }
  | { type: 'ref'; reference: { $ref: string } }
  | { type: 'array' | 'map'; element: PropertyType }
  | { type: 'union'; types: PropertyType[] };
interface PropertySpec {
  type: PropertyType;
  required?: boolean;
}
type PropertySpecs = Record<string, PropertySpec>;

const RESOURCE_KEYS = new Set([
  'Type',
  'Properties',
  'DependsOn',
  'Condition',
  'DeletionPolicy',
  'UpdateReplacePolicy',
  'Metadata',
  'CreationPolicy',
  'UpdatePolicy',
]);

let loaded: Promise<SpecDatabase> | undefined;
/** The specification database, loaded once per process (about two seconds). */
export function cfnSpec(): Promise<SpecDatabase> {
  loaded ??= loadAwsServiceSpec();
  return loaded;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isNoValue = (v: unknown) => isObject(v) && v.Ref === 'AWS::NoValue';

/** `{ "Ref": … }` or `{ "Fn::…": … }`: one key naming an intrinsic function. */
function intrinsic(v: unknown): string | undefined {
  if (!isObject(v)) return undefined;
  const keys = Object.keys(v);
  return keys.length === 1 && (keys[0] === 'Ref' || keys[0]!.startsWith('Fn::')) ? keys[0] : undefined;
}

class Checker {
  readonly errors: string[] = [];
  readonly #db: SpecDatabase;
  constructor(db: SpecDatabase) {
    this.#db = db;
  }

  resource(id: string, resource: unknown): void {
    if (!isObject(resource) || typeof resource.Type !== 'string') {
      this.errors.push(`${id}: not a resource (no Type)`);
      return;
    }
    for (const key of Object.keys(resource))
      if (!RESOURCE_KEYS.has(key)) this.errors.push(`${id}: unknown resource attribute ${key}`);
    if (resource.Type.startsWith('Custom::')) return;
    const found = this.#db.lookup('resource', 'cloudFormationType', 'equals', resource.Type);
    if (found.length !== 1) {
      this.errors.push(`${id}: unknown resource type ${resource.Type}`);
      return;
    }
    const properties = resource.Properties ?? {};
    this.object(`${id} (${resource.Type})`, properties, found[0]!.properties as PropertySpecs);
  }

  /** An object of named properties (a resource's Properties or a nested type). */
  object(path: string, value: unknown, specs: PropertySpecs): void {
    if (!isObject(value)) {
      this.errors.push(`${path}: expected an object, got ${JSON.stringify(value)}`);
      return;
    }
    for (const [name, v] of Object.entries(value)) {
      const spec = specs[name];
      if (!spec) this.errors.push(`${path}: unknown property ${name}`);
      else if (!isNoValue(v)) this.value(`${path}.${name}`, v, spec.type);
    }
    for (const [name, spec] of Object.entries(specs))
      if (spec.required && value[name] === undefined)
        this.errors.push(`${path}: missing required property ${name}`);
  }

  value(path: string, v: unknown, type: PropertyType): void {
    const fn = intrinsic(v);
    if (fn === 'Fn::If') {
      const [, whenTrue, whenFalse] = (v as { 'Fn::If': unknown[] })['Fn::If'];
      for (const branch of [whenTrue, whenFalse]) if (!isNoValue(branch)) this.value(path, branch, type);
      return;
    }
    if (fn) return;
    const problem = this.mismatch(path, v, type);
    if (problem) this.errors.push(`${path}: ${problem}`);
  }

  /** Why `v` does not have `type` (nested problems are recorded as they are found), or undefined. */
  private mismatch(path: string, v: unknown, type: PropertyType): string | undefined {
    const got = JSON.stringify(v)?.slice(0, 80);
    switch (type.type) {
      case 'string':
        if (!['string', 'number', 'boolean'].includes(typeof v)) return `expected a string, got ${got}`;
        if (type.allowedValues && !type.allowedValues.includes(String(v)))
          return `${got} is not one of ${type.allowedValues.join(', ')}`;
        return undefined;
      case 'number':
      case 'integer': {
        const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
        if (typeof n !== 'number' || Number.isNaN(n)) return `expected a number, got ${got}`;
        if (type.type === 'integer' && !Number.isInteger(n)) return `expected an integer, got ${got}`;
        if (type.type === 'integer' && type.allowedValues && !type.allowedValues.includes(n))
          return `${got} is not one of ${type.allowedValues.join(', ')}`;
        return undefined;
      }
      case 'boolean':
        return typeof v === 'boolean' || v === 'true' || v === 'false'
          ? undefined
          : `expected a boolean, got ${got}`;
      case 'json':
        return isObject(v) || typeof v === 'string' || Array.isArray(v)
          ? undefined
          : `expected JSON, got ${got}`;
      case 'date-time':
        return typeof v === 'string' ? undefined : `expected a date-time string, got ${got}`;
      case 'null':
        return v === null ? undefined : `expected null, got ${got}`;
      default:
        return this.structured(path, v, type, got);
    }
  }

  private structured(path: string, v: unknown, type: PropertyType, got: string | undefined) {
    switch (type.type) {
      case 'tag':
        if (!isObject(v) || Object.keys(v).sort().join() !== 'Key,Value')
          return `expected a {Key, Value} tag, got ${got}`;
        this.value(`${path}.Key`, v.Key, { type: 'string' });
        this.value(`${path}.Value`, v.Value, { type: 'string' });
        return undefined;
      case 'array':
        if (!Array.isArray(v)) return `expected a list, got ${got}`;
        v.forEach((e, i) => {
          if (!isNoValue(e)) this.value(`${path}[${i}]`, e, type.element);
        });
        return undefined;
      case 'map':
        if (!isObject(v)) return `expected a map, got ${got}`;
        for (const [k, e] of Object.entries(v)) this.value(`${path}.${k}`, e, type.element);
        return undefined;
      case 'union':
        return this.union(path, v, type.types, got);
      case 'ref': {
        const def = this.#db.get('typeDefinition', type.reference.$ref) as { properties: PropertySpecs };
        this.object(path, v, def.properties);
        return undefined;
      }
      default:
        return `unsupported specification type ${JSON.stringify(type)}`;
    }
  }

  /** Valid when one member type accepts the value without any error. */
  private union(path: string, v: unknown, types: PropertyType[], got: string | undefined) {
    for (const t of types) {
      const probe = new Checker(this.#db);
      probe.value(path, v, t);
      if (probe.errors.length === 0) return undefined;
    }
    return `${got} matches none of ${types.map((t) => t.type).join(' | ')}`;
  }
}

/** Every problem of the template's resources against the specification; empty when it conforms. */
export async function checkTemplate(template: { Resources?: Record<string, unknown> }): Promise<string[]> {
  const checker = new Checker(await cfnSpec());
  for (const [id, resource] of Object.entries(template.Resources ?? {})) checker.resource(id, resource);
  return checker.errors;
}
