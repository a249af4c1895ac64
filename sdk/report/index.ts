/**
 * `@coldchain/sdk/report`: the shipment temperature report — {@link readShipmentReport} reads it from the chain
 * at one block, {@link shipmentReport} builds it from a state and history already read, and
 * {@link renderReportPdf} draws it as an A4 PDF. Browser-safe; a separate entry so that the main entry does not
 * carry the PDF library (a dApp loads this one lazily, on the click that downloads a report). See
 * docs/integration.md, "Temperature report".
 */
export * from "./model.js";
export * from "./pdf.js";
