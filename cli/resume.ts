/**
 * `sunbird-dataops resume <runId>`: continues an interrupted run — a sync run, or a Keycloak deletion run
 * (whose accepted blocks go on to the delete stage) — from the ledger. New pacing given here applies to
 * what is left; secrets come from the environment and flags, as for `sync` (the ledger never keeps them).
 */
import type { Command } from 'commander';
import { addSettingOptions, configFromOptions, Out, UsageError, withRuntime } from '#cli/common.ts';
import { KEYCLOAK_SETTINGS, resumeHere as resumeDeletion } from '#cli/keycloak.ts';
import {
  type ExecOptions,
  execOptions,
  localOptions,
  pacingOverrides,
  recordApplied,
  resumeHere,
  SYNC_SETTINGS,
} from '#cli/sync.ts';
import type { FlatConfig, SettingKey } from '#shared/config.ts';
import { DELETE_STAGE } from '#shared/keycloak/delete-stage.ts';
import { planResume } from '#shared/sync/resume.ts';

const RESUME_SETTINGS: SettingKey[] = [...new Set([...SYNC_SETTINGS, ...KEYCLOAK_SETTINGS])];

export function registerResumeCommand(program: Command): void {
  const cmd = program
    .command('resume <runId>')
    .description(
      'Continue an interrupted run: unscanned ranges from their checkpoints, blocks whose outcome is unknown',
    );
  localOptions(
    addSettingOptions(cmd, RESUME_SETTINGS),
    'where the logs are written (default: where the run wrote them)',
  ).action(async (runId: string, opts: Record<string, unknown>) => {
    const out: Out = new Out(opts);
    let cfg: FlatConfig;
    let x: ExecOptions;
    try {
      cfg = configFromOptions(opts, RESUME_SETTINGS);
      x = execOptions(opts, cfg);
      if (x.target === 'aws')
        throw new UsageError('resume runs here; a run on the deployed stack is resumed by its queues');
    } catch (err) {
      out.fail(err);
    }
    await withRuntime(cfg, out, async (rt) => {
      await rt.ledger.ready();
      const plan = await planResume(rt.ledger, runId, pacingOverrides(opts, cfg));
      await recordApplied(rt, plan, x.concurrency);
      if (plan.run.next === DELETE_STAGE) {
        return resumeDeletion(
          rt,
          cfg,
          plan,
          x.outGiven ? x.out : String(plan.record.params.out ?? x.out),
          out,
        );
      }
      return resumeHere(rt, plan, x, out);
    });
  });
}
