import { useCallback, useEffect, useRef, useState, type ChangeEvent } from "react";
import {
  TextFieldSync,
  type TextFieldCollection,
  type TextFieldElement,
  type TextFieldOptions,
  type TextFieldState,
  type TextFieldStatus,
} from "./text-field-sync.ts";

export type { TextFieldCollection, TextFieldOptions, TextFieldStatus } from "./text-field-sync.ts";

/** What `useTextField` returns: props to spread on a textarea (or input), and how saving goes. */
export interface TextFieldBinding<E extends TextFieldElement = HTMLTextAreaElement> {
  readonly props: {
    readonly ref: (element: E | null) => void;
    readonly value: string;
    readonly readOnly: boolean;
    readonly onChange: (event: ChangeEvent<E>) => void;
    readonly onBlur: () => void;
  };
  readonly status: TextFieldStatus;
  /** Why the last save failed, or why the field is unavailable. */
  readonly error: Error | undefined;
  /** Saves the queued keystrokes now (as leaving the field does). */
  readonly flush: () => Promise<void>;
}

const LOADING: TextFieldState = { value: "", status: "loading", error: undefined, readOnly: true };

/**
 * Binds a textarea to a declared `text` field of one record, for collaborative editing: each keystroke
 * becomes an Automerge text splice placed against the text the user saw, saved in order after a pause
 * in typing (and on blur, and on unmount); edits from other devices and tabs appear while the user
 * types, and the caret and selection stay in the text around them.
 *
 * @example
 * function Note({ id }: { id: RecordId }) {
 *   const note = useTextField(db.patients, id, "notes");
 *   return (
 *     <>
 *       <textarea {...note.props} aria-label="Note" />
 *       <p>{note.status === "saved" ? "Saved" : note.status === "failed" ? note.error?.message : "…"}</p>
 *     </>
 *   );
 * }
 */
export function useTextField<E extends TextFieldElement = HTMLTextAreaElement>(
  collection: TextFieldCollection,
  id: string,
  path: string,
  options: TextFieldOptions = {},
): TextFieldBinding<E> {
  const [state, setState] = useState(LOADING);
  const element = useRef<E | null>(null);
  const sync = useRef<TextFieldSync | null>(null);
  const display = useRef(options.display);
  display.current = options.display;
  const { saveDelay } = options;

  useEffect(() => {
    setState(LOADING);
    const field = new TextFieldSync(collection, id, path, setState, {
      saveDelay,
      display: (value) => display.current?.(value) ?? "",
    });
    field.attach(element.current);
    sync.current = field;
    return () => {
      sync.current = null;
      void field.dispose();
    };
  }, [collection, id, path, saveDelay]);

  const ref = useCallback((el: E | null) => {
    element.current = el;
    sync.current?.attach(el);
  }, []);
  const onChange = useCallback((event: ChangeEvent<E>) => sync.current?.input(event.currentTarget.value), []);
  const flush = useCallback(() => sync.current?.flush() ?? Promise.resolve(), []);
  const onBlur = useCallback(() => void flush(), [flush]);

  return {
    props: { ref, value: state.value, readOnly: state.readOnly, onChange, onBlur },
    status: state.status,
    error: state.error,
    flush,
  };
}
