// The HandlerContext of a call to the grpc-js server (grpc-server.ts), made
// with no more than the call uses.
//
// connect's createHandlerContext makes, for every call, a deadline signal (an
// AbortController and a timer), a second controller linked to it and to the
// request's, and copies of the request headers and two empty header sets: in
// the mesh that was 6-11 % of a service's CPU on home reads, for a signal most
// handlers never look at. Here the signal is made the first time a handler
// (or onBehalfOf, passing it on to a nested call) reads it: one controller,
// aborted by the client's cancel, the deadline or the call's end, with the
// deadline timer only then. The semantics are connect's: DeadlineExceeded
// ("the operation timed out") at the deadline, the abort reason given
// otherwise; a call that never reads its signal has nothing to abort.
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues, type ContextValues, type HandlerContext } from "@connectrpc/connect";

/** What the context needs of a grpc-js server call. */
export interface CancellableCall {
  readonly cancelled: boolean;
  once(event: "cancelled", listener: () => void): unknown;
}

export class GrpcCallContext implements HandlerContext {
  readonly protocolName = "grpc";
  readonly requestMethod = "POST";
  readonly url: string;
  private controller: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Why the call ended, once it has (completion, shutdown, cancel, deadline). */
  private ended: unknown;
  private trailer: Headers | undefined;
  private header: Headers | undefined;
  private contextValues: ContextValues | undefined;

  constructor(
    readonly service: DescService,
    readonly method: DescMethod,
    readonly requestHeader: Headers,
    /** Epoch ms; undefined: none. */
    private readonly deadline: number | undefined,
    private readonly call: CancellableCall,
    private readonly cancelledReason: unknown,
  ) {
    this.url = `/${service.typeName}/${method.name}`;
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      const controller = new AbortController();
      this.controller = controller;
      if (this.ended !== undefined) controller.abort(this.ended);
      else if (this.call.cancelled) this.cancel();
      else {
        this.call.once("cancelled", () => this.cancel());
        if (this.deadline !== undefined) {
          const ms = this.deadline - Date.now();
          if (ms <= 0) this.abort(timedOut());
          else this.timer = setTimeout(() => this.abort(timedOut()), ms);
        }
      }
    }
    return this.controller.signal;
  }

  readonly timeoutMs = (): number | undefined => (this.deadline === undefined ? undefined : this.deadline - Date.now());

  get responseHeader(): Headers {
    return (this.header ??= new Headers());
  }

  get responseTrailer(): Headers {
    return (this.trailer ??= new Headers());
  }

  /** The trailer a handler set, if it set any. */
  get trailerSet(): Headers | undefined {
    return this.trailer;
  }

  get values(): ContextValues {
    return (this.contextValues ??= createContextValues());
  }

  /** grpc-js cancelled the call: the client did, or (grpc-js's own timer) its deadline passed. */
  private cancel(): void {
    this.abort(this.deadline !== undefined && Date.now() >= this.deadline ? timedOut() : this.cancelledReason);
  }

  /** Ends the call's signal (and its deadline timer) with `reason`; the first reason stays. */
  abort(reason: unknown): void {
    if (this.ended !== undefined) return;
    this.ended = reason;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.controller?.abort(reason);
  }
}

function timedOut(): ConnectError {
  return new ConnectError("the operation timed out", Code.DeadlineExceeded);
}
