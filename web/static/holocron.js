// Holocron JavaScript client (ES module). Being built.
export const version = "dev";
