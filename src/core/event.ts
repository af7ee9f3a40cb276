// Events as the engine sees them, and the chain of events a partial match has bound.
// Plain data; shared by the compiler's evaluators, the NFA and the runtime.

/** A JSON value as it arrives in an event. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** An accepted event. Identity is `seq`: two events with equal contents are distinct. */
export interface StreamEvent {
  /** The event exactly as it arrived (a JSON object). Never mutated. */
  data: { [key: string]: Json };
  /** Event time, epoch milliseconds. */
  time: number;
  /** Arrival sequence number, unique per engine and increasing in arrival order. */
  seq: number;
  stream: string;
  /** The MQTT topic the event came in on, when it came over MQTT. */
  topic: string | undefined;
}

/**
 * One event bound to a step of a partial match. A partial match is the chain of these from
 * its last bound event back to its first (`prev`), so partial matches share their common
 * prefixes (the shared buffer of SASE+/Flink CEP) and extending one never copies a list.
 */
export interface BoundNode {
  /** Index of the step name in the rule's step-name table (`CompiledRule.stepNames`). */
  nameId: number;
  event: StreamEvent;
  prev: BoundNode | null;
  /** Number of nodes in the chain up to and including this one. */
  length: number;
}

/**
 * What an evaluator reads. One scope object is reused for every evaluation (the engine
 * overwrites its fields), so evaluators must not keep a reference to it.
 */
export interface EvalScope {
  /** The candidate event of a step condition; `null` when a template renders a finished match. */
  candidate: StreamEvent | null;
  /** The events bound so far (newest first through `prev`), or `null` for none. */
  bound: BoundNode | null;
  /** The key of the partial match (for `key()` in templates); `null` for an unkeyed rule. */
  key: Json;
  /** The candidate's event time in conditions; the match's (or timeout's) time in templates. */
  time: number;
}
