// PKCS#11 allows one C_Initialize per process and C_Finalize ends it for every user. The restart and
// configuration tests finalize and reload the module, so the test classes of this assembly run one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
[assembly: System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
