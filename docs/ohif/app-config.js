/** @type {AppTypes.Config} */
// OHIF (npm @ohif/app 3.13) as a yilian relay's reading station: put this file in OHIF's
// dist/ in place of its own app-config.js and give that folder to the relay as
// `[http] viewer_dir`. The relay then serves OHIF at https://RELAY:8443/ and DICOMweb at
// /dicomweb on the same origin, which is OHIF's data source here.
//
// Logging in: a reader opens https://RELAY:8443/#token=TOKEN with the token that
// `yilian token issue --identity READER` printed. The token is kept for this browser tab only
// (sessionStorage), taken out of the address bar, and sent as `Authorization: Bearer TOKEN`
// with every DICOMweb request: the small extension below hands it to OHIF's
// userAuthenticationService, which OHIF's DICOMweb data source (study list included) and its
// image loader ask for that header. Without a token the relay answers 401 and the list stays
// empty. tests/ohif.rs checks this file with OHIF 3.13.2 in headless Chromium.
(function () {
  var match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
  if (match) {
    window.sessionStorage.setItem('yilian-token', decodeURIComponent(match[1]));
    window.history.replaceState(null, '', window.location.pathname + window.location.search);
  }
})();

window.config = {
  routerBasename: null,
  extensions: [
    {
      id: 'yilian-reader-token',
      preRegistration: function ({ servicesManager }) {
        var token = window.sessionStorage.getItem('yilian-token');
        if (token) {
          servicesManager.services.userAuthenticationService.setServiceImplementation({
            getAuthorizationHeader: function () {
              return { Authorization: 'Bearer ' + token };
            },
          });
        }
      },
    },
  ],
  modes: [],
  customizationService: {},
  showStudyList: true,
  maxNumberOfWebWorkers: 2,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: true,
  showLoadingIndicator: true,
  strictZSpacingForVolumeViewport: true,
  defaultDataSourceName: 'yilian',
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'yilian',
      configuration: {
        friendlyName: 'yilian relay',
        name: 'yilian',
        qidoRoot: window.location.origin + '/dicomweb',
        wadoRoot: window.location.origin + '/dicomweb',
        wadoUriRoot: window.location.origin + '/dicomweb',
        qidoSupportsIncludeField: true,
        supportsFuzzyMatching: true,
        supportsWildcard: true,
        // Images and thumbnails from WADO-RS frames, as stored (transfer-syntax=*).
        imageRendering: 'wadors',
        thumbnailRendering: 'wadors',
        enableStudyLazyLoad: true,
        bulkDataURI: { enabled: true },
      },
    },
  ],
};
