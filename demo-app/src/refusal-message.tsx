import { errorTags, explainError } from "./explain-error.ts";

/**
 * An action's failure, explained (see `explainError`), as an alert carrying the error's code and reason
 * in `data-` attributes. Renders nothing while `error` is null.
 */
export function RefusalMessage({
  error,
  clinicName,
  testId,
}: {
  error: unknown;
  clinicName: string;
  testId?: string;
}) {
  if (error === null) return null;
  return (
    <p role="alert" className="error" data-testid={testId} {...errorTags(error)}>
      {explainError(error, clinicName)}
    </p>
  );
}
