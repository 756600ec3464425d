import { Component, type ErrorInfo, type ReactNode } from "react";

interface Props {
  /** What the fallback calls the part that failed, e.g. "this patient's audit trail". */
  what: string;
  children: ReactNode;
}

/**
 * Keeps a rendering error in one part of the page from blanking the whole app (React unmounts the
 * whole tree on an error no boundary catches). The fallback says what could not be shown and offers to
 * try again; the rest of the page keeps working. Give it a `key` that changes with what it shows (the
 * route, the record) so moving on also starts afresh.
 *
 * @example
 * <ErrorBoundary what="the patient list" key={clinicId}><PatientListPage … /></ErrorBoundary>
 */
export class ErrorBoundary extends Component<Props, { error: Error | null }> {
  override state: { error: Error | null } = { error: null };

  static getDerivedStateFromError(error: unknown): { error: Error } {
    return { error: error instanceof Error ? error : new Error(String(error)) };
  }

  override componentDidCatch(error: unknown, info: ErrorInfo): void {
    // Kept for whoever opens the console; the page itself shows the fallback.
    console.warn(`Shoal demo: ${this.props.what} could not be shown`, error, info.componentStack);
  }

  override render(): ReactNode {
    const { error } = this.state;
    if (!error) return this.props.children;
    return (
      <div role="alert" className="card render-error" data-testid="render-error">
        <p>
          Part of this page could not be shown ({this.props.what}): {error.message}
        </p>
        <p className="hint">
          A record may hold data this app does not understand, perhaps written by another device. Everything
          else keeps working.
        </p>
        <button type="button" className="secondary" onClick={() => this.setState({ error: null })}>
          Try again
        </button>
      </div>
    );
  }
}
