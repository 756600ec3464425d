/** What a refused `replace` is told, by the store's verdict. */
export const REPLACE_REFUSAL_MESSAGES = {
  conflict:
    "Only the device's last stored commit can be replaced, by one with the same routing header and length.",
  gap: "The relay holds no commit at this device and sequence number to replace.",
} as const;
