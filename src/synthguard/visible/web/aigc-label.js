// synthguard: <aigc-label> web component, an explicit AIGC label for chat interfaces
// (GB 45438 5.1, interactive interfaces). Load once, then write <aigc-label></aigc-label> inside the
// container of generated content; text="..." overrides the configured wording. Shadow DOM keeps
// the page's styles from hiding or shrinking it; a label that someone removes from the page is
// put back (a MutationObserver watches the parent).
(() => {
  const WORDING = "{{WORDING}}";
  if (customElements.get("aigc-label")) return;
  class AigcLabel extends HTMLElement {
    static get observedAttributes() { return ["text"]; }
    constructor() {
      super();
      const root = this.attachShadow({ mode: "closed" });
      root.innerHTML = `<style>
        :host { position: sticky; bottom: 0; z-index: 2147483000; display: flex !important;
                justify-content: center; pointer-events: none; visibility: visible !important;
                opacity: 1 !important; }
        span { margin: 4px; padding: 2px 10px; border-radius: 999px; color: #fff;
               background: rgba(0,0,0,.72); box-shadow: 0 0 0 1px rgba(255,255,255,.35);
               font: 600 13px/1.6 system-ui, "PingFang SC", "Microsoft YaHei",
                     "Noto Sans CJK SC", sans-serif; letter-spacing: .05em; user-select: none; }
      </style><span role="note"></span>`;
      this._span = root.querySelector("span");
      this._render();
    }
    attributeChangedCallback() { this._render(); }
    connectedCallback() {
      const parent = this.parentNode;
      if (!parent || this._observer) return;
      this._observer = new MutationObserver(() => {
        if (!this.isConnected && parent.isConnected) parent.appendChild(this);
      });
      this._observer.observe(parent, { childList: true });
    }
    _render() {
      const text = this.getAttribute("text") || WORDING;
      this._span.textContent = text;
      this.setAttribute("aria-label", text);
    }
  }
  customElements.define("aigc-label", AigcLabel);
})();
