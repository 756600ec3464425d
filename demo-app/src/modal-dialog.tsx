import { useEffect, useId, useRef, type ReactNode } from "react";

/**
 * A modal built on `<dialog>` and `showModal()`: the browser traps focus, makes the page behind inert
 * and closes on Escape, which is the keyboard behaviour people expect without extra code.
 */
export function ModalDialog({
  title,
  onClose,
  children,
}: {
  title: string;
  onClose(): void;
  children: ReactNode;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const headingId = useId();
  useEffect(() => {
    const dialog = ref.current;
    // No cleanup that calls close(): its "close" event would arrive after React StrictMode's second
    // mount and shut the dialog at once. Unmounting removes the element, which leaves the top layer.
    if (dialog && !dialog.open) dialog.showModal();
  }, []);
  return (
    <dialog ref={ref} className="modal" aria-labelledby={headingId} onClose={onClose}>
      <h2 id={headingId}>{title}</h2>
      {children}
    </dialog>
  );
}
