// Type declarations of livegate.js, the browser client for livegate wire
// protocol v1 (docs/protocol.md). Served next to it as /livegate.d.ts.
//
// Use them without a build step from a JavaScript file with JSDoc
// (// @ts-check and /** @type {import("./livegate.js").Client} */), or from
// TypeScript with a path mapping of "/livegate.js" to this file.

/** The WebSocket subprotocol of wire protocol v1. */
export declare const SUBPROTOCOL: "livegate.v1";

/** Connection states reported through `client.on("state", fn)`. */
export declare const State: Readonly<{
  CONNECTING: "connecting";
  CONNECTED: "connected";
  DISCONNECTED: "disconnected";
  CLOSED: "closed";
}>;

/** A connection state. */
export type ConnectionState = (typeof State)[keyof typeof State];

/** A JSON value, as the server sends and accepts it. */
export type JSONValue = null | boolean | number | string | JSONValue[] | { [key: string]: JSONValue };

/** Error codes of the protocol (docs/protocol.md §9). */
export type ProtocolErrorCode =
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "not_available"
  | "rate_limited"
  | "limit_exceeded"
  | "too_large"
  | "internal"
  | "unavailable";

/** Error codes the client produces itself. */
export type ClientErrorCode =
  | "disconnected"
  | "closed"
  | "timeout"
  | "too_large"
  | "token"
  | "protocol"
  | "unsubscribed"
  | "csrf"
  | "dependency";

/**
 * The error type of every rejected promise and "error" event of a Client.
 * `code` is a protocol error code or one of the client's own codes; a
 * server may add codes, hence `string`.
 */
export declare class LivegateError extends Error {
  constructor(code: string, message?: string, detail?: string);
  readonly name: "LivegateError";
  code: ProtocolErrorCode | ClientErrorCode | (string & {});
  /** Debug detail from a server in debug mode only; never rely on it. */
  detail?: string;
  /** The close code, on the error of a close whose advice is "stop". */
  closeCode?: number;
  /** The channel, on the error of a failed resubscription. */
  channel?: string;
  /** The view's name, on errors of a live view. */
  view?: string;
}

/** What to do after the socket closed with a code (protocol.AdviceFor). */
export type CloseAdvice = "reconnect" | "new_token" | "stop";

/** The advice for a close code: "reconnect", "new_token" or "stop". */
export declare function adviceFor(code: number): CloseAdvice;

/**
 * The frames of one WebSocket message of a connection that asked for
 * batches ("batch": true at connect): one or more JSON frames separated by
 * "\n". Empty parts are dropped.
 */
export declare function splitFrames(data: string): string[];

/**
 * Splits a message of a batching connection into its frames, which are
 * separated by "\n"; empty pieces are skipped.
 */
export function splitFrames(data: string): string[];

/** The result of `connect`. */
export interface ConnectResult {
  /** The connection's id on the node; opaque. */
  client: string;
  /** The authenticated user (the token's `sub`). */
  user: string;
  /** Unix seconds at which the connection ends unless refreshed. */
  expires: number;
  /** The server's ping interval in seconds. */
  ping: number;
  /** Channels the server subscribed the connection to at connect, with their stream positions. */
  channels?: Record<string, {offset: number; epoch: string}>;
  /** True: messages may carry several frames separated by "\n" (the client asks for it at connect). */
  batch?: boolean;
  [key: string]: unknown;
}

/** The result of `refresh`. */
export interface RefreshResult {
  expires: number;
  [key: string]: unknown;
}

/** A stream position (docs/protocol.md §7). */
export interface StreamPosition {
  offset: number;
  epoch: string;
}

/** One recovered publication of a subscribe result. */
export interface Publication {
  offset: number;
  data: JSONValue;
}

/** The result of `subscribe`. */
export interface SubscribeResult extends StreamPosition {
  /** Present on a resubscription with `since`. */
  recovered?: boolean;
  publications?: Publication[];
  [key: string]: unknown;
}

/** Where a push came from. */
export interface PushInfo extends StreamPosition {
  channel: string;
}

/** Receives each publication of a channel once, in order. */
export type PushHandler = (data: JSONValue, info: PushInfo) => void;

/** Called when publications were missed: reload the application's state. */
export type ResetHandler = (result: SubscribeResult) => void;

/** Options of `subscribe` (its third argument, when not a function). */
export interface SubscribeOptions {
  onReset?: ResetHandler;
  /** Returns a subscription token for namespaces that need one. */
  getToken?: (channel: string) => string | Promise<string>;
  /** Called when another connection joins or leaves the channel (namespaces with join/leave notices). */
  onJoinLeave?: (event: JoinLeaveEvent) => void;
}

/** A connection joining (join true) or leaving a channel. */
export interface JoinLeaveEvent {
  join: boolean;
  conn: string;
  user: string;
}

/** One connection present in a channel. */
export interface PresenceClient {
  conn: string;
  user: string;
}

/** Information given with a "state" event; code and reason after a close. */
export interface StateInfo {
  code?: number;
  reason?: string;
}

/** The client's events and their listeners. */
export interface ClientEvents {
  state: (state: ConnectionState, info: StateInfo) => void;
  error: (error: LivegateError | Error) => void;
}

/** A DOMPurify export (only what the client uses). */
export interface DOMPurifyLike {
  sanitize(html: string, config: Record<string, unknown>): DocumentFragment;
  addHook(hook: "uponSanitizeAttribute", fn: (node: Element, data: {
    attrName: string;
    attrValue: string;
    keepAttr: boolean;
    forceKeepAttr?: boolean;
  }) => void): void;
  readonly isSupported?: boolean;
}

/** An idiomorph export (only what the client uses). */
export interface IdiomorphLike {
  morph(oldNode: Node, newContent: Node | string | null, config?: Record<string, unknown>): unknown;
}

/** Options of `new Client(url, options)`. */
export interface ClientOptions {
  /**
   * Returns a fresh connect token; called before every connection attempt
   * and every refresh. If it rejects with an error whose `fatal` property is
   * true, the client stops.
   */
  getToken: () => string | Promise<string>;
  /** Log frames (tokens redacted, through sanitizeForLog) to the console. */
  debug?: boolean;
  /** ms before call/publish/unsubscribe/view commands reject with "timeout". Default 30000. */
  callTimeout?: number;
  /** ms from opening the socket to the connect reply. Default 10000. */
  connectTimeout?: number;
  /** First reconnect delay cap in ms. Default 500. */
  backoffMin?: number;
  /** Largest reconnect delay in ms. Default 30000. */
  backoffMax?: number;
  /** Commands per second the client sends at most. Default 50. */
  rate?: number;
  /** Commands the client may send at once. Default 10. */
  burst?: number;
  /** Largest frame the client sends, in bytes. Default 65536. */
  maxFrameBytes?: number;
  /** ms a live view waits for a missing patch before it resyncs. Default 1000. */
  patchGapTimeout?: number;
  /** Lines an operation's log part keeps. Default 1000. */
  maxLogLines?: number;
  /** Where purify.es.mjs and idiomorph.esm.js are loaded from. Default "./vendor/" next to livegate.js. */
  vendorBase?: string | URL;
  /** A DOMPurify export to use instead of loading one. */
  DOMPurify?: DOMPurifyLike | ((root: Window) => DOMPurifyLike);
  /** An idiomorph export to use instead of loading one. */
  Idiomorph?: IdiomorphLike;
  /** A WebSocket implementation (tests). */
  WebSocket?: typeof WebSocket;
}

/** Options of `mountViews`. */
export interface MountViewsOptions {
  /**
   * Returns a fresh session token for a re-join (after a reconnect or a
   * resync), when the one in data-lg-session may have expired.
   */
  getSession?: (element: Element, view: string) => string | Promise<string>;
}

/** States of a live view, also set as the element's data-lg-state. */
export type LiveViewState = "joining" | "joined" | "disconnected" | "error" | "left" | "closed";

/** The result of a `view` command. */
export interface ViewEventResult {
  version: number;
  patch?: ViewPatch;
  [key: string]: unknown;
}

/**
 * A live-view patch: replaces the UTF-16 code units [start, end) of the
 * view's previous HTML with insert. Pushed as {"patch": ViewPatch}.
 */
export interface ViewPatch {
  ref?: string;
  version: number;
  start: number;
  end: number;
  insert: string;
}

/** The `detail` of the "lg:update" DOM event a view element dispatches after each update. */
export interface LiveViewUpdateDetail {
  ref: string | null;
  version: number;
}

/**
 * The `detail` of the "lg:error" DOM event of a view that could not be
 * joined or that the server closed ({"view_closed": {ref, code}}, or a
 * "limit_exceeded" or "too_large" answer to one of its events).
 */
export interface LiveViewErrorDetail {
  code: string;
}

/** A mounted live view (made by `Client.mountViews`). */
export declare class LiveView {
  private constructor(ctl: never);
  /** The element with data-lg-view. */
  readonly element: Element;
  /** The view's name (the data-lg-view attribute). */
  readonly name: string;
  /** The server's reference of the joined view, or null while not joined. */
  readonly ref: string | null;
  /** The version of the rendered HTML, or null before the first join. */
  readonly version: number | null;
  readonly state: LiveViewState;
  /**
   * Sends a view event (CSRF token added); resolves with the result. name
   * must match ^[a-z][a-z0-9_]{0,63}$.
   */
  pushEvent(name: string, payload?: JSONValue | Record<string, unknown>): Promise<ViewEventResult>;
  /** Leaves the view: events stop, the element keeps its last content. */
  leave(): Promise<Record<string, never>>;
}

/** States of a live operation. */
export type OperationState = "running" | "done" | "failed" | "cancelled";

/** Types of live-operation reports. */
export type OperationReportType = "status" | "log" | "percent" | "error" | "result" | "swap" | "state";

/** A report pushed on channel op:<id>. */
export interface OperationReport {
  op: string;
  type: OperationReportType | (string & {});
  /** Server-escaped HTML; sanitised again before insertion. */
  html?: string;
  text?: string;
  percent?: number;
  /** The id of the element (inside the container) a "swap" fills. */
  target?: string;
  state?: OperationState;
  seq?: number;
  [key: string]: unknown;
}

/** Options of `watchOperation`. */
export interface WatchOperationOptions {
  /** Called when the operation's state changes. */
  onState?: (state: OperationState, report: OperationReport) => void;
  /** Called when reports were missed (the page should reload the operation's state). */
  onReset?: ResetHandler;
  /** Returns a subscription token for op:<id> when the namespace needs one. */
  getToken?: (channel: string) => string | Promise<string>;
}

/** A watched live operation (from `watchOperation`). */
export interface OperationWatch {
  readonly opId: string;
  /** "op:" + opId */
  readonly channel: string;
  /** The last state reported, or null. */
  readonly state: OperationState | null;
  /** Stops rendering and unsubscribes. */
  stop(): Promise<Record<string, never>>;
}

/** A livegate connection that reconnects, refreshes and recovers by itself. */
export declare class Client {
  /**
   * @param url the gateway's WebSocket URL, e.g. "wss://host/ws". Never put
   *   a token in it.
   */
  constructor(url: string, options: ClientOptions);

  /** The current connection state. */
  readonly state: ConnectionState;
  /** The live views currently mounted. */
  readonly views: LiveView[];

  /** Registers a listener; returns a function that removes it. */
  on<E extends keyof ClientEvents>(event: E, fn: ClientEvents[E]): () => boolean;

  /** Connects; resolves once authenticated, rejects when the client stops. */
  connect(): Promise<ConnectResult>;

  /** Subscribes to channel with recovery; resolves with the first subscribe result. */
  subscribe(channel: string, onPush: PushHandler, onReset?: ResetHandler | SubscribeOptions): Promise<SubscribeResult>;
  /** Lists the connections present in a channel this client is subscribed to (presence namespaces only). */
  presence(channel: string): Promise<PresenceClient[]>;

  /** Unsubscribes; resolves with {} once the server confirmed. */
  unsubscribe(channel: string): Promise<Record<string, never>>;

  /** Calls the server's event handler name; resolves with its result. */
  call<R = JSONValue>(name: string, payload?: JSONValue | Record<string, unknown>): Promise<R>;

  /** Publishes data to channel; resolves with its stream position. */
  publish(channel: string, data: JSONValue | Record<string, unknown>): Promise<StreamPosition>;

  /** Refreshes the connection's token now. */
  refresh(): Promise<RefreshResult>;

  /** Closes for good: no reconnect; pending work rejects. */
  close(): void;

  /**
   * Mounts the live views ([data-lg-view] with data-lg-session) in root:
   * joins each with the page's <meta name="csrf-token"> (rejects with
   * LivegateError "csrf" without it), renders, and binds lg-click,
   * lg-submit and lg-change. Call connect() first.
   */
  mountViews(root?: Document | Element, options?: MountViewsOptions): Promise<LiveView[]>;

  /**
   * Subscribes to op:<opId> and renders its reports into container's
   * [data-lg-op-part] elements. Resolves once subscribed.
   */
  watchOperation(opId: string, container: Element, options?: WatchOperationOptions): Promise<OperationWatch>;
}

/**
 * Copies the own enumerable keys of source into target except "__proto__",
 * "constructor" and "prototype", recursively for plain objects (new ones
 * made with Object.create(null)); returns target.
 */
export declare function safeMerge<T extends object>(target: T, source: unknown): T & Record<string, unknown>;

/**
 * value as one line safe for a console: no ANSI escapes, control
 * characters or bidi overrides, at most maxLength code points (default 200).
 */
export declare function sanitizeForLog(value: unknown, maxLength?: number): string;

/** Applies a patch's [start, end) → insert splice (UTF-16 offsets) to html. Throws LivegateError "protocol" when malformed. */
export declare function applyPatch(html: string, patch: Pick<ViewPatch, "start" | "end" | "insert">): string;

/** "apply" when next is current + 1, "duplicate" when not newer, "gap" when versions are missing. */
export declare function checkVersion(current: number, next: number): "apply" | "duplicate" | "gap";

/** A view's HTML and version, with the patches that arrived out of order. */
export declare class PatchQueue {
  constructor(html: string, version: number, options?: { maxPending?: number });
  readonly html: string;
  readonly version: number;
  /** Patches waiting for a missing earlier one. */
  readonly pending: number;
  /** The highest version seen, applied or waiting. */
  readonly highest: number;
  /** "applied", "duplicate", "buffered" or "gap" (resync). Throws on a malformed patch. */
  offer(patch: ViewPatch): "applied" | "duplicate" | "buffered" | "gap";
}

declare global {
  interface HTMLElementEventMap {
    "lg:update": CustomEvent<LiveViewUpdateDetail>;
    "lg:error": CustomEvent<LiveViewErrorDetail>;
  }
}
