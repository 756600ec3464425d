import { useMemo } from "react";
import { qrCode } from "./qr-code.ts";

/**
 * A QR code as inline SVG: one path of unit squares with the 4-module quiet zone the standard asks for,
 * scaled by CSS, so it stays sharp at any size and needs no canvas (the page's CSP allows no data: images).
 */
export function QrImage({ text, label, size = 220 }: { text: string; label: string; size?: number }) {
  const { path, extent } = useMemo(() => {
    const modules = qrCode(text);
    let d = "";
    modules.forEach((row, y) =>
      row.forEach((dark, x) => {
        if (dark) d += `M${x + 4} ${y + 4}h1v1h-1z`;
      }),
    );
    return { path: d, extent: modules.length + 8 };
  }, [text]);
  return (
    <svg
      className="qr-code"
      role="img"
      aria-label={label}
      width={size}
      height={size}
      viewBox={`0 0 ${extent} ${extent}`}
      shapeRendering="crispEdges"
      data-testid="invite-qr"
    >
      <rect width={extent} height={extent} fill="#fff" />
      <path d={path} fill="#000" />
    </svg>
  );
}
